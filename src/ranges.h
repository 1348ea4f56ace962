/*
 * ranges.h: SQL fragments that keep a statement on the history tables
 * (partitioned by recipient id in ranges, sql/029) to the ranges its rows
 * are in.  `= ANY(array)` of ids known only at run time prunes no partition
 * by itself; the ids' least and greatest (BETWEEN over subqueries) become
 * InitPlans, which run-time pruning uses, so only the ranges between them
 * are read, whether the plan is custom or generic.  Only a bound for
 * pruning: the statements still match rows by key.
 */
#ifndef PUSHGATE_RANGES_H
#define PUSHGATE_RANGES_H

/* COL between the least and greatest of the ids ID of FROM (a CTE, or "unnest(arr) x"). */
#define RANGES_BETWEEN(COL, ID, FROM) \
	COL " BETWEEN (SELECT min(" ID ") FROM " FROM ") AND (SELECT max(" ID ") FROM " FROM ")"

/* COL is one of the ids ID of FROM: found by key, in their ranges only. */
#define RANGES_IN(COL, ID, FROM) \
	COL " = ANY (ARRAY(SELECT " ID " FROM " FROM "))" " AND " RANGES_BETWEEN(COL, ID, FROM)

/*
 * Rows of an outbox t (webhook_outbox, smpp_outbox: partitioned by
 * recipient id) whose recipient is in the bigint[] ARR, or that have none
 * (a mobile-originated message: the default partition).
 */
#define RANGES_OUTBOX_IN(t, ARR) \
	"(" t ".recipient_id IS NULL OR (" t ".recipient_id = ANY(" ARR ") AND " \
	RANGES_BETWEEN(t ".recipient_id", "x", "unnest(" ARR ") x") "))"

/* Rows of an outbox t matching the rows K by id, pruned to the recipient ids RID of the CTE FROM. */
#define RANGES_OUTBOX_KEYED(t, K, RID, FROM) \
	t ".id = " K ".id AND (" t ".recipient_id IS NULL OR (" t ".recipient_id = " K "." RID \
	" AND " RANGES_BETWEEN(t ".recipient_id", RID, FROM) "))"

/*
 * Rows of an outbox t named by the CTE K's (id, rid) pairs (rid NULL: none):
 * found through each partition's primary key by the id array whatever join
 * the plan picks (a generic plan made on empty tables hashed a scan of the
 * whole partition otherwise), in those recipients' ranges only.
 */
#define RANGES_OUTBOX_BY_KEYS(t, K) \
	t ".id = ANY (ARRAY(SELECT id FROM " K ")) AND " RANGES_OUTBOX_KEYED(t, K, "rid", K)

#endif
