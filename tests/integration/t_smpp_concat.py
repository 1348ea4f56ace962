"""t_smpp_concat: how each concatenation mode looks on the wire.

One smsc-sim, five routes to it (own system_id each, so every receipt comes
back on the route that sent the part): concat = udh8, udh16, sar, payload,
and udh8 with coding = ucs2 forced.  Each route gets a 300-character GSM
text, a 100-character Korean text, and two texts that sit on the boundary
between the 8-bit and 16-bit UDH part sizes (306 GSM characters: 2 parts of
153 or 3 of 152; 134 Korean characters: 2 parts of 67 or 3 of 66).  The
simulator's submit_sm lines (esm, dcs, udh, sar, payload, len) must show
the right framing for every part, and every recipient must end
SMS_DELIVERED with recipients.parts equal to the number of parts sent.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import TAP

tests = TAP()
FINAL = ("SMS_DELIVERED", "SMS_FAILED", "SMS_EXPIRED", "SMS_UNKNOWN")

# route name -> (prefix, concat, coding)
ROUTES = {
    "u8": ("8201", "udh8", "auto"),
    "u16": ("8202", "udh16", "auto"),
    "sar": ("8203", "sar", "auto"),
    "pl": ("8204", "payload", "auto"),
    "ucs": ("8205", "udh8", "ucs2"),
}
GSM = "The quick brown fox jumps over the lazy dog 0123456789. "
KOREAN = "가나다라마바사아자차카타파하 "
TEXTS = [   # (label, text)
    ("gsm300", (GSM * 6)[:300]),
    ("ko100", (KOREAN * 8)[:100]),
    ("gsm306", (GSM * 6)[:306]),
    ("ko134", (KOREAN * 10)[:134]),
]
sent = {}   # dst -> (route, label, text, recipient id)


def ini():
    routes = {}
    for name, (prefix, concat, coding) in ROUTES.items():
        routes[f"route {name}"] = {"prefixes": prefix, "concat": concat, "coding": coding,
                                   "system_id": f"cc_{name}", "window": "10"}
    routes["route u8"]["default"] = "yes"
    return routes


def expected(route, text):
    """(coding name, data_coding, octets per unit, units, parts) pushgated should use."""
    concat, coding = ROUTES[route][1], ROUTES[route][2]
    ucs2 = coding == "ucs2" or any(ord(ch) > 0x7f for ch in text)
    units = len(text)
    single, per = (70, 67 if concat != "udh16" else 66) if ucs2 else \
                  (160, 153 if concat != "udh16" else 152)
    if concat == "payload" or units <= single:
        parts = 1
    else:
        parts = -(-units // per)
    return ("ucs2" if ucs2 else "gsm7", 8 if ucs2 else 0, 2 if ucs2 else 1, units, parts, per)


def submit_lines(env):
    out = {}
    for line in env.smsc_log().splitlines():
        if " ev=submit_sm " not in line + " " or " esm=" not in line:
            continue
        kv = dict(tok.split("=", 1) for tok in line.split() if "=" in tok)
        out.setdefault(kv["dst"], []).append(kv)
    return out


@tests.case
def five_routes_bind_to_one_smsc(env):
    env.ini_overrides.update(ini())
    env.write_ini()
    env.start_pushgated()
    env.wait_for(lambda: env.scalar("SELECT count(*) FROM smpp_binds WHERE state = 'bound'") == "5",
                 timeout=20, what="5 binds bound")


@tests.case
def every_text_reaches_every_route_and_is_delivered_with_its_part_count(env):
    ids = []
    for route, (prefix, _, _) in ROUTES.items():
        for t, (label, text) in enumerate(TEXTS):
            dst = f"{prefix}0000{t:02d}1"   # ends in 1: smsc-sim delivers
            body = env.send([dst], text=text)
            rid = int(body["recipients"][0]["id"])
            sent[dst] = (route, label, text, rid)
            ids.append(rid)
    idl = ",".join(map(str, ids))
    env.wait_for(lambda: env.scalar(f"SELECT count(*) FROM recipients WHERE id IN ({idl}) "
                                    f"AND state IN {FINAL!r}") == str(len(ids)),
                 timeout=60, what=f"{len(ids)} recipients final")
    rows = {r[0]: r[1:] for r in env.sql(
        f"SELECT msisdn, state, parts, route FROM recipients WHERE id IN ({idl})")}
    wrong = []
    for dst, (route, label, text, rid) in sent.items():
        parts = expected(route, text)[4]
        state, got_parts, got_route = rows[dst]
        if (state, int(got_parts or 1), got_route) != ("SMS_DELIVERED", parts, route):
            wrong.append((route, label, state, got_parts, parts, got_route))
    assert not wrong, wrong
    multi = env.sql(f"SELECT recipient_id, count(*), count(*) FILTER (WHERE state = 'SMS_DELIVERED') "
                    f"FROM sms_parts WHERE recipient_id IN ({idl}) GROUP BY recipient_id")
    by_id = {int(r[0]): (int(r[1]), int(r[2])) for r in multi}
    for dst, (route, label, text, rid) in sent.items():
        parts = expected(route, text)[4]
        if parts > 1:
            assert by_id.get(rid) == (parts, parts), (route, label, by_id.get(rid), parts)


def check_route(env, route):
    lines = submit_lines(env)
    concat = ROUTES[route][1]
    refs = set()
    for dst, (r, label, text, rid) in sent.items():
        if r != route:
            continue
        coding, dcs, octets, units, parts, per = expected(route, text)
        got = lines.get(dst, [])
        where = f"route {route} text {label}"
        assert len(got) == parts, (where, len(got), parts, got)
        assert all(int(p["dcs"]) == dcs for p in got), (where, [p["dcs"] for p in got])
        body = 0
        seen_refs = set()
        for seq, p in enumerate(got, 1):
            udh, sar, payload, esm, ln = p["udh"], p["sar"], p["payload"], int(p["esm"], 16), int(p["len"])
            if concat == "payload":
                assert (esm & 0x40, udh, sar, ln) == (0, "-", "-", 0), (where, p)
                assert int(payload) == units * octets, (where, payload, units * octets)
                body += int(payload)
                continue
            assert payload == "-", (where, p)
            if parts == 1:
                assert (esm & 0x40, udh, sar) == (0, "-", "-"), (where, p)
                body += ln
                continue
            if concat in ("udh8", "udh16"):
                assert esm & 0x40 and sar == "-", (where, p)
                if concat == "udh8":
                    assert len(udh) == 12 and udh.startswith("050003"), (where, udh)
                    ref, total, no = udh[6:8], int(udh[8:10], 16), int(udh[10:12], 16)
                else:
                    assert len(udh) == 14 and udh.startswith("060804"), (where, udh)
                    ref, total, no = udh[6:10], int(udh[10:12], 16), int(udh[12:14], 16)
                assert (total, no) == (parts, seq), (where, udh, parts, seq)
                seen_refs.add(ref)
                payload_octets = ln - len(udh) // 2
            else:   # sar
                assert not esm & 0x40 and udh == "-", (where, p)
                ref, total, no = sar.split("/")
                assert (int(total), int(no)) == (parts, seq), (where, sar, parts, seq)
                seen_refs.add(ref)
                payload_octets = ln
            want = per * octets if seq < parts else units * octets - per * octets * (parts - 1)
            assert payload_octets == want, (where, seq, payload_octets, want)
            body += payload_octets
        assert body == units * octets, (where, body, units * octets)
        if parts > 1:
            assert len(seen_refs) == 1, (where, seen_refs)   # one reference for all parts
            assert not (seen_refs & refs), (where, "reference reused", seen_refs)
            refs |= seen_refs


@tests.case
def udh8_parts_carry_050003_ref_total_seq(env):
    check_route(env, "u8")


@tests.case
def udh16_parts_carry_060804_and_fit_152_septets_or_66_units(env):
    check_route(env, "u16")
    # the boundary texts: 306 septets need 3 parts here (2 with udh8), 134 units 3 (2 with udh8)
    lines = submit_lines(env)
    counts = {label: len(lines[dst]) for dst, (r, label, _, _) in sent.items() if r == "u16"}
    assert counts == {"gsm300": 2, "ko100": 2, "gsm306": 3, "ko134": 3}, counts
    counts8 = {label: len(lines[dst]) for dst, (r, label, _, _) in sent.items() if r == "u8"}
    assert counts8 == {"gsm300": 2, "ko100": 2, "gsm306": 2, "ko134": 2}, counts8


@tests.case
def sar_parts_carry_tlvs_and_no_udh(env):
    check_route(env, "sar")


@tests.case
def payload_sends_one_submit_with_the_whole_text(env):
    check_route(env, "pl")
    lines = submit_lines(env)
    got = {label: lines[dst][0]["payload"] for dst, (r, label, _, _) in sent.items() if r == "pl"}
    assert got == {"gsm300": "300", "ko100": "200", "gsm306": "306", "ko134": "268"}, got


@tests.case
def forced_ucs2_sends_gsm_text_as_ucs2_parts(env):
    check_route(env, "ucs")
    lines = submit_lines(env)
    got = {label: (len(lines[dst]), lines[dst][0]["dcs"]) for dst, (r, label, _, _) in sent.items()
           if r == "ucs"}
    assert got == {"gsm300": (5, "8"), "ko100": (2, "8"), "gsm306": (5, "8"), "ko134": (2, "8")}, got


@tests.case
def every_part_got_its_receipt_on_its_own_route(env):
    ids = ",".join(str(v[3]) for v in sent.values())
    rows = env.sql(f"SELECT r.route, r.parts, (SELECT count(*) FROM events e WHERE e.recipient_id = r.id "
                   f"AND e.kind = 'receipt') FROM recipients r WHERE r.id IN ({ids})")
    wrong = [r for r in rows if int(r[1] or 1) != int(r[2])]
    assert len(rows) == len(sent) and not wrong, wrong
    assert env.scalar("SELECT count(*) FROM dlr_parked") == "0"
    total = sum(expected(v[0], v[2])[4] for v in sent.values())
    n = sum(len(v) for v in submit_lines(env).values())
    print(f"# {len(sent)} recipients, {n} submit_sm checked (expected {total})", flush=True)
    lines = submit_lines(env)
    for dst, (route, label, _, _) in sent.items():
        if label in ("gsm300", "ko100"):
            p = lines[dst][-1]
            print(f"# {route:4} {label}: {len(lines[dst])} part(s), last: esm={p['esm']} dcs={p['dcs']} "
                  f"len={p['len']} udh={p['udh']} sar={p['sar']} payload={p['payload']}", flush=True)
    assert n == total, (n, total)


tests.run(daemon=False)
