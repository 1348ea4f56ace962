-- 025_route_pauses: an operator stops an SMS route (a carrier's maintenance,
-- a billing dispute) on every node at once: pushgatectl route pause NAME
-- [REASON] writes a row and NOTIFYs pushgate_routes; no node leases SMS for
-- the route while it is here (a route failing over to another hands its
-- queue over as if its binds were down).  route resume deletes it.
CREATE TABLE route_pauses (
    route      text PRIMARY KEY,
    paused_at  timestamptz NOT NULL DEFAULT now(),
    reason     text
);
