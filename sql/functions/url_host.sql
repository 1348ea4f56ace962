-- The host of an http(s) URL, lower case ([v6] with its brackets); NULL when none is found.
CREATE OR REPLACE FUNCTION url_host(u text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT lower(substring(u FROM '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?(\[[^]/]*\]|[^/:?#]*)'))
$$;
