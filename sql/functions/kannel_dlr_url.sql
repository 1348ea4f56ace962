-- A dlr-url template with Kannel's escapes substituted (values percent-encoded):
-- %d type, %p receiver, %P sender, %q/%Q the same with a leading 00 as +,
-- %A the report text, %a the same, %T unix time, %t "YYYY-MM-DD HH:MM:SS" UTC,
-- %I recipient id, %i route (smsc-id), %F SMSC message id, %n account name
-- (sendsms user), %% a percent sign.  Other escapes stay as they are, and a
-- % at the end stays.  It jumps from one % to the next: one step per escape,
-- not per character.
CREATE OR REPLACE FUNCTION kannel_dlr_url(tpl text, type integer, receiver text, sender text, reply text,
                                          at timestamptz, recipient bigint, route text, smsc_id text, account text)
RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    out text := '';
    rest text := tpl;
    p integer;
    c text;
BEGIN
    LOOP
        p := strpos(rest, '%');
        IF p = 0 OR p = length(rest) THEN
            RETURN out || rest;
        END IF;
        c := substr(rest, p + 1, 1);
        out := out || left(rest, p - 1) || CASE c
            WHEN 'd' THEN type::text
            WHEN 'p' THEN kannel_urlencode(receiver)
            WHEN 'P' THEN kannel_urlencode(sender)
            WHEN 'q' THEN kannel_urlencode(kannel_plus(receiver))
            WHEN 'Q' THEN kannel_urlencode(kannel_plus(sender))
            WHEN 'A' THEN kannel_urlencode(coalesce(reply, ''))
            WHEN 'a' THEN kannel_urlencode(coalesce(reply, ''))
            WHEN 'T' THEN floor(extract(epoch FROM at))::bigint::text
            WHEN 't' THEN kannel_urlencode(to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'))
            WHEN 'I' THEN recipient::text
            WHEN 'i' THEN kannel_urlencode(coalesce(route, ''))
            WHEN 'F' THEN kannel_urlencode(coalesce(smsc_id, ''))
            WHEN 'n' THEN kannel_urlencode(coalesce(account, ''))
            WHEN '%' THEN '%'
            ELSE '%' || c END;
        rest := substr(rest, p + 2);
    END LOOP;
END $$;
