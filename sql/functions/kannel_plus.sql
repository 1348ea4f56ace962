-- Kannel's "+" form of a number: a leading 00 becomes + (%q, %Q).
CREATE OR REPLACE FUNCTION kannel_plus(n text) RETURNS text LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT CASE WHEN n LIKE '00%' THEN '+' || substr(n, 3) ELSE n END
$$;
