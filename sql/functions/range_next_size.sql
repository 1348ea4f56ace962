-- The size of the next range of ids to make after the newest one,
-- [p_lo, p_hi), made at p_made when p_then ids had been issued, now that
-- p_now have: p_span of traffic at the rate seen since (once that is at
-- least ten minutes ago; until then the newest range's size), never less
-- than p_min ids.  history_ensure() sizes the recipient ranges with it,
-- message_ensure() the message ranges.
CREATE OR REPLACE FUNCTION range_next_size(p_lo bigint, p_hi bigint, p_made timestamptz, p_then bigint,
                                           p_now bigint, p_min bigint, p_span interval)
RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
    size bigint := p_hi - p_lo;
    elapsed double precision := extract(epoch FROM now() - p_made);
BEGIN
    IF elapsed >= 600 AND p_now > p_then THEN
        size := ceil((p_now - p_then) / elapsed * extract(epoch FROM p_span))::bigint;
    END IF;
    RETURN greatest(size, p_min);
END $$;
