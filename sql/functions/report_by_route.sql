-- SMS per route over all time (report_routes from -infinity).
CREATE OR REPLACE VIEW report_by_route AS
    SELECT * FROM report_routes('-infinity');
