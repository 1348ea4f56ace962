-- A URL (NULL: none) names a host of the list: itself, or under a ".domain" entry.
CREATE OR REPLACE FUNCTION url_host_allowed(u text, hosts text[]) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT u IS NULL OR EXISTS (SELECT 1 FROM unnest(hosts) h, url_host(u) x(host)
                                WHERE x.host <> '' AND (x.host = lower(h) OR (h LIKE '.%' AND x.host LIKE '%' || lower(h))))
$$;
