//! The change feed's decisions: PostgreSQL snapshots as the feed's cursor position, the signed
//! cursor itself, and when a cursor has outlived the feed's retention.
//!
//! A change is logged with the id of the transaction that made it (`xid8`). A poll reads the log
//! under one snapshot S and returns the changes whose transaction was not visible in the previous
//! poll's snapshot P but is in S; S becomes the next cursor. Visibility in a snapshot is commit
//! order, not start order: a transaction that began before P and committed after it is invisible
//! in P (it is in P's in-progress list, or at or past P's `xmax`) and visible in S, so it is
//! returned by exactly the first poll that can see it, whatever order transactions commit in.
use crate::cursor::{CursorError, seal, unseal};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A `pg_snapshot` (`xmin:xmax:xip,...`, as PostgreSQL prints it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Every transaction below it had finished when the snapshot was taken.
    pub xmin: u64,
    /// Every transaction at or above it had not started.
    pub xmax: u64,
    /// The transactions in progress between the two, ascending.
    pub xip: Vec<u64>,
}

impl Snapshot {
    /// Parse PostgreSQL's text form; anything PostgreSQL would not print is refused.
    pub fn parse(text: &str) -> Option<Snapshot> {
        let mut parts = text.split(':');
        let (xmin, xmax, xip) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let number = |s: &str| -> Option<u64> {
            if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        let (xmin, xmax) = (number(xmin)?, number(xmax)?);
        let xip = if xip.is_empty() {
            vec![]
        } else {
            xip.split(',').map(number).collect::<Option<Vec<u64>>>()?
        };
        // PostgreSQL's own checks (pg_snapshot input): 0 < xmin <= xmax, xip sorted within
        // [xmin, xmax), without duplicates.
        if xmin == 0 || xmin > xmax || xip.len() > 1_000_000 {
            return None;
        }
        if xip.iter().any(|&x| x < xmin || x >= xmax) || xip.windows(2).any(|w| w[0] >= w[1]) {
            return None;
        }
        Some(Snapshot { xmin, xmax, xip })
    }

    /// Whether transaction `xid`'s effects are visible in this snapshot, as
    /// `pg_visible_in_snapshot` decides (for a transaction that committed; the log only holds
    /// rows of committed ones).
    pub fn visible(&self, xid: u64) -> bool {
        xid < self.xmin || (xid < self.xmax && self.xip.binary_search(&xid).is_err())
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:", self.xmin, self.xmax)?;
        for (i, x) in self.xip.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{x}")?;
        }
        Ok(())
    }
}

/// What a feed cursor pins. Signed with the same keys as page cursors (`cursor::derive_key`),
/// and told apart from them by `t`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedCursor {
    /// Format version.
    pub v: u8,
    /// Always "feed".
    pub t: String,
    /// The signing key's id.
    pub kid: String,
    pub model: String,
    pub uid: i32,
    /// The feed's id: enabling a feed again (after `feed_disable`, or to repair it) gives it a
    /// new id, and the cursors of the old one expire.
    pub feed: i64,
    /// The snapshot of the poll that handed the cursor out: changes visible in it were returned.
    pub since: String,
    /// While a window is read in pages (`more`): the snapshot closing the window, and the last
    /// record id returned from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upto: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
}

impl FeedCursor {
    /// A cursor at the start of a window: the changes after `since`.
    pub fn at(kid: &str, model: &str, uid: i32, feed: i64, since: &Snapshot) -> FeedCursor {
        FeedCursor {
            v: 1,
            t: "feed".into(),
            kid: kid.into(),
            model: model.into(),
            uid,
            feed,
            since: since.to_string(),
            upto: None,
            after: None,
        }
    }

    /// The cursor after a page of the window `since`..`upto` that ended at record `last`:
    /// the rest of the same window when there is `more`, else the window after `upto`.
    pub fn next(&self, upto: &Snapshot, more: Option<i64>) -> FeedCursor {
        match more {
            Some(last) => FeedCursor {
                upto: Some(upto.to_string()),
                after: Some(last),
                ..self.clone()
            },
            None => FeedCursor {
                since: upto.to_string(),
                upto: None,
                after: None,
                ..self.clone()
            },
        }
    }
}

/// Why a feed cursor is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("{0}")]
    Cursor(#[from] CursorError),
    #[error("the cursor belongs to another feed ({0} differs): start again without it")]
    OtherFeed(&'static str),
    /// The feed was enabled again since (its log was dropped): the cursor's changes are gone.
    #[error(
        "the cursor is from an earlier enabling of this model's feed: start again without it (and read everything once)"
    )]
    Reenabled,
    /// The log rows the cursor still needs were purged (older than the feed's retention).
    #[error(
        "the cursor is older than the feed's retention: the changes since were purged; start again without it (and read everything once)"
    )]
    Expired,
}

pub fn sign(cursor: &FeedCursor, key: &[u8]) -> String {
    seal(
        &serde_json::to_vec(cursor).expect("a cursor serialises"),
        key,
    )
}

/// Verify the signature with `key`, then that the cursor is for this model, user and feed, and
/// that the log still holds every change it has not seen (`purged_below`: the feed's purge
/// horizon, below which committed transactions' log rows may be gone).
pub fn open(
    token: &str,
    key: &[u8],
    model: &str,
    uid: i32,
    feed: i64,
    purged_below: u64,
) -> Result<(FeedCursor, Snapshot, Option<Snapshot>), FeedError> {
    let bytes = unseal(token, key)?;
    let c: FeedCursor = serde_json::from_slice(&bytes).map_err(|_| CursorError::Malformed)?;
    if c.v != 1 || c.t != "feed" || c.upto.is_some() != c.after.is_some() {
        return Err(CursorError::Malformed.into());
    }
    if c.model != model {
        return Err(FeedError::OtherFeed("model"));
    }
    if c.uid != uid {
        return Err(FeedError::OtherFeed("user"));
    }
    if c.feed != feed {
        return Err(FeedError::Reenabled);
    }
    let since = Snapshot::parse(&c.since).ok_or(CursorError::Malformed)?;
    let upto = match &c.upto {
        Some(u) => Some(Snapshot::parse(u).ok_or(CursorError::Malformed)?),
        None => None,
    };
    if expired(&since, purged_below) {
        return Err(FeedError::Expired);
    }
    Ok((c, since, upto))
}

/// The log keeps every row whose transaction committed less than the retention ago; rows of
/// transactions below `purged_below` may be gone (every such transaction had ended when the
/// horizon was noted). A cursor needs the rows of every transaction not visible in its snapshot:
/// it has expired when such a transaction is below the horizon, i.e. when the horizon passes the
/// snapshot's `xmax`, or one of the transactions the snapshot saw running.
pub fn expired(since: &Snapshot, purged_below: u64) -> bool {
    purged_below > since.xmax || since.xip.first().is_some_and(|&x| x < purged_below)
}

/// The parameter numbers of a change-feed statement: the feed's id, the cursor's snapshot,
/// the window's closing snapshot ('' while open), the last id returned and the page size.
pub struct Window {
    pub feed: usize,
    pub since: usize,
    pub upto: usize,
    pub after: usize,
    pub limit: usize,
}

/// The statement of one page of a change feed: the transactions visible now (or in the
/// window's closing snapshot while it is read in pages) that were not in the cursor's snapshot;
/// their first `limit` records by id after the last one returned, shaped by `record` over the
/// readable rows `from_where` (row `t`), and the ids deleted. Created and deleted in the window:
/// the caller never saw the record, neither list names it. Deleted: named only if the id does
/// not exist now. Columns: the body (`records`, `deleted`), the closing snapshot, the last id,
/// whether more follow.
pub fn changes_sql(
    record: &str,
    from_where: &str,
    table: &crate::ident::Ident,
    w: &Window,
) -> String {
    let (f, s, u, a, l) = (w.feed, w.since, w.upto, w.after, w.limit);
    format!(
        "WITH w AS (SELECT coalesce(nullif(${u}, '')::pg_snapshot, pg_current_snapshot()) AS hi, ${s}::pg_snapshot AS lo), \
         c AS (SELECT l.res_id, bool_or(l.op = 'c') AS created, bool_or(l.op = 'd') AS deleted \
                 FROM api_gateway.feed_log l, w \
                WHERE l.feed_id = ${f} AND l.xact >= pg_snapshot_xmin(w.lo) \
                  AND NOT pg_visible_in_snapshot(l.xact, w.lo) AND pg_visible_in_snapshot(l.xact, w.hi) \
                  AND l.res_id > ${a} \
                GROUP BY l.res_id ORDER BY l.res_id LIMIT ${l} + 1), \
         p AS (SELECT c.* FROM c ORDER BY c.res_id LIMIT ${l}) \
         SELECT jsonb_build_object( \
                  'records', (SELECT coalesce(jsonb_agg({record} ORDER BY t.id), '[]'::jsonb) \
                                {from_where} AND t.id IN (SELECT p.res_id FROM p)), \
                  'deleted', (SELECT coalesce(jsonb_agg(p.res_id ORDER BY p.res_id), '[]'::jsonb) FROM p \
                               WHERE p.deleted AND NOT p.created \
                                 AND NOT EXISTS (SELECT 1 FROM public.{table} x WHERE x.id = p.res_id))), \
                (SELECT w.hi::text FROM w), \
                (SELECT max(p.res_id) FROM p), \
                (SELECT count(*) FROM c) > ${l}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cursor::derive_key;
    use proptest::prelude::*;

    fn snap(text: &str) -> Snapshot {
        Snapshot::parse(text).unwrap()
    }

    #[test]
    fn snapshots_parse_as_postgresql_prints_them() {
        assert_eq!(
            snap("10:20:12,15"),
            Snapshot {
                xmin: 10,
                xmax: 20,
                xip: vec![12, 15]
            }
        );
        assert_eq!(snap("10:10:").to_string(), "10:10:");
        assert_eq!(snap("10:20:12,15").to_string(), "10:20:12,15");
        for bad in [
            "",
            "1",
            "1:2",
            "0:1:",
            "2:1:",
            "1:5:5",
            "1:5:0",
            "1:5:3,3",
            "1:5:4,3",
            "1:5:3:",
            "a:b:",
            "-1:2:",
            " 1:2:",
            "1:2:,",
            "1:99999999999999999999999:",
        ] {
            assert_eq!(Snapshot::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn visibility_is_commit_order() {
        let s = snap("10:20:12,15");
        assert!(s.visible(9));
        assert!(s.visible(10) && s.visible(11) && s.visible(19));
        assert!(!s.visible(12) && !s.visible(15));
        assert!(!s.visible(20) && !s.visible(21));
    }

    #[test]
    fn cursor_round_trip_and_refusals() {
        let key = derive_key("a-secret-of-at-least-32-bytes-long!!");
        let c = FeedCursor::at("k1", "res.partner", 6, 3, &snap("100:105:101"));
        let t = sign(&c, &key);
        let (back, since, upto) = open(&t, &key, "res.partner", 6, 3, 100).unwrap();
        assert_eq!((back, since, upto), (c.clone(), snap("100:105:101"), None));
        assert_eq!(
            open(&t, &key, "res.users", 6, 3, 0),
            Err(FeedError::OtherFeed("model"))
        );
        assert_eq!(
            open(&t, &key, "res.partner", 7, 3, 0),
            Err(FeedError::OtherFeed("user"))
        );
        assert_eq!(
            open(&t, &key, "res.partner", 6, 4, 0),
            Err(FeedError::Reenabled)
        );
        // Expired once the purge horizon passes a transaction the snapshot did not see (101,
        // running when it was taken; or 105, not started yet).
        assert_eq!(
            open(&t, &key, "res.partner", 6, 3, 102),
            Err(FeedError::Expired)
        );
        assert!(open(&t, &key, "res.partner", 6, 3, 101).is_ok());
        let quiet = sign(
            &FeedCursor::at("k1", "res.partner", 6, 3, &snap("100:105:")),
            &key,
        );
        assert!(open(&quiet, &key, "res.partner", 6, 3, 105).is_ok());
        assert_eq!(
            open(&quiet, &key, "res.partner", 6, 3, 106),
            Err(FeedError::Expired)
        );
        // Another key, or the payload rewritten for another model or user, does not verify.
        let other = derive_key("another-secret-of-at-least-32-bytes!");
        assert_eq!(
            open(&t, &other, "res.partner", 6, 3, 0),
            Err(FeedError::Cursor(CursorError::BadSignature))
        );
        let (_, sig) = t.split_once('.').unwrap();
        let mut forged = c.clone();
        forged.model = "res.users".into();
        let forged = format!(
            "{}.{sig}",
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                serde_json::to_vec(&forged).unwrap()
            )
        );
        assert_eq!(
            open(&forged, &key, "res.users", 6, 3, 0),
            Err(FeedError::Cursor(CursorError::BadSignature))
        );
        // A page cursor (same keys) is not a feed cursor, and a feed cursor is not a page cursor.
        let page = crate::cursor::Cursor {
            v: 1,
            kid: "k1".into(),
            model: "res.partner".into(),
            uid: 6,
            order: "id asc".into(),
            domain: crate::cursor::domain_digest("[]"),
            lang: "en_US".into(),
            key: serde_json::json!({"id": 1}).as_object().unwrap().clone(),
        };
        let page = crate::cursor::sign(&page, &key);
        assert_eq!(
            open(&page, &key, "res.partner", 6, 3, 0),
            Err(FeedError::Cursor(CursorError::Malformed))
        );
        assert_eq!(
            crate::cursor::open(&t, &key, "res.partner", 6, "id asc", "[]", "en_US"),
            Err(CursorError::Malformed)
        );
        // A window read in pages carries both its ends.
        let mid = c.next(&snap("110:110:"), Some(42));
        let (back, since, upto) = open(&sign(&mid, &key), &key, "res.partner", 6, 3, 0).unwrap();
        assert_eq!(
            (back.after, since, upto),
            (Some(42), snap("100:105:101"), Some(snap("110:110:")))
        );
        let end = mid.next(&snap("110:110:"), None);
        assert_eq!(
            (end.since.as_str(), end.upto, end.after),
            ("110:110:", None, None)
        );
    }

    /// One transaction of the simulation: its id, and the step at which it commits.
    #[derive(Debug, Clone)]
    struct Txn {
        xid: u64,
        commit_at: usize,
    }

    proptest! {
        /// Transactions take ids in start order and commit in any order; polls happen between
        /// any steps. Every committed transaction is returned by exactly one poll (the first
        /// whose snapshot sees it), none before it committed.
        #[test]
        fn every_commit_is_returned_exactly_once(
            spans in proptest::collection::vec((0usize..30, 0usize..30), 1..25),
            polls in proptest::collection::btree_set(0usize..32, 1..12),
        ) {
            // PostgreSQL hands out transaction ids in the order transactions first write.
            let mut spans: Vec<(usize, usize)> = spans.iter().map(|(a, b)| ((*a).min(*b), (*a).max(*b) + 1)).collect();
            spans.sort();
            let txns: Vec<Txn> = spans.iter().enumerate()
                .map(|(i, (_, commit))| Txn { xid: 100 + i as u64, commit_at: *commit })
                .collect();
            // The snapshot at step `now`: started but uncommitted transactions are in progress;
            // those not started yet are at or past xmax.
            let snapshot_at = |now: usize| {
                let started: Vec<&Txn> = txns.iter().zip(&spans)
                    .filter(|(_, (start, _))| *start <= now).map(|(t, _)| t).collect();
                let xmax = started.iter().map(|t| t.xid + 1).max().unwrap_or(100);
                let xip: Vec<u64> = started.iter().filter(|t| t.commit_at > now).map(|t| t.xid).collect();
                let xmin = xip.first().copied().unwrap_or(xmax);
                Snapshot { xmin, xmax, xip }
            };
            let mut seen: Vec<u64> = vec![];
            let mut previous = snapshot_at(0);
            for &now in &polls {
                let current = snapshot_at(now);
                // What the poll reads: log rows of committed transactions (visible to it),
                // not visible in the previous snapshot.
                for t in &txns {
                    let committed = t.commit_at <= now;
                    if committed && !previous.visible(t.xid) {
                        prop_assert!(current.visible(t.xid));
                        seen.push(t.xid);
                    }
                }
                previous = current;
            }
            let last = *polls.iter().last().unwrap();
            let mut expected: Vec<u64> = txns.iter()
                .filter(|t| t.commit_at <= last && !snapshot_at(0).visible(t.xid))
                .map(|t| t.xid).collect();
            expected.sort();
            let mut got = seen.clone();
            got.sort();
            prop_assert_eq!(got, expected);
        }

        /// `expired` is exactly: some transaction below the horizon is invisible in the snapshot.
        #[test]
        fn expired_iff_a_purged_transaction_was_unseen(
            xmin in 1u64..40, span in 0u64..20, picks in proptest::collection::btree_set(0u64..20, 0..6),
            purged_below in 0u64..80,
        ) {
            let xip: Vec<u64> = picks.into_iter().filter(|p| *p < span).map(|p| xmin + p).collect();
            let s = Snapshot { xmin, xmax: xmin + span, xip };
            let unseen_purged = (1..purged_below).any(|x| !s.visible(x));
            prop_assert_eq!(expired(&s, purged_below), unseen_purged);
        }

        #[test]
        fn snapshot_text_round_trips(xmin in 1u64..1000, span in 0u64..50, picks in proptest::collection::btree_set(0u64..50, 0..10)) {
            let xmax = xmin + span;
            let xip: Vec<u64> = picks.into_iter().filter(|p| *p < span).map(|p| xmin + p).collect();
            let s = Snapshot { xmin, xmax, xip };
            prop_assert_eq!(Snapshot::parse(&s.to_string()), Some(s));
        }

        #[test]
        fn parsing_garbage_never_panics(s in "\\PC{0,100}") {
            let _ = Snapshot::parse(&s);
            let _ = open(&s, b"k", "m", 1, 1, 0);
        }
    }

    #[test]
    fn the_changes_statement_reads_the_window_with_its_parameters() {
        let table = crate::ident::Ident::new("res_partner").unwrap();
        let w = Window {
            feed: 4,
            since: 5,
            upto: 6,
            after: 7,
            limit: 8,
        };
        let sql = changes_sql(
            "to_jsonb(t.id)",
            "FROM public.\"res_partner\" t WHERE true",
            &table,
            &w,
        );
        assert!(sql.contains("coalesce(nullif($6, '')::pg_snapshot, pg_current_snapshot()) AS hi, $5::pg_snapshot AS lo"));
        assert!(sql.contains("l.feed_id = $4") && sql.contains("l.res_id > $7"));
        assert!(sql.contains("LIMIT $8 + 1") && sql.ends_with("(SELECT count(*) FROM c) > $8"));
        assert!(sql.contains("jsonb_agg(to_jsonb(t.id) ORDER BY t.id)"));
        assert!(sql.contains("FROM public.\"res_partner\" x WHERE x.id = p.res_id"));
    }
}
