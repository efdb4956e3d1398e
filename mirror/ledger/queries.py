"""Every SQL statement the ledger runs, as constant text with `:named` parameters.

No statement is assembled at run time: values are always bound, never formatted into
the text. A filter that a question may leave open (`target` when one ledger serves
several mirrors, `tag` for a whole repository) is written as
`(CAST(:x AS TEXT) IS NULL OR x = :x)`: the cast lets PostgreSQL type a NULL
parameter, and SQLite reads it as it is.
"""

from __future__ import annotations

INSERT_RUN = """INSERT INTO mirror_runs
    (id, source, target, started, finished, steps, written, drift, outcome, triggered_by)
    VALUES (:id, :source, :target, :started, :finished, :steps, :written, :drift, :outcome,
     :triggered_by)"""

RECENT_RUNS = """SELECT id, source, target, started, finished, steps, written, drift, outcome,
      triggered_by
    FROM mirror_runs
    WHERE (CAST(:target AS TEXT) IS NULL OR target = :target)
    ORDER BY finished DESC LIMIT :limit"""

INSERT_OBSERVATION = """INSERT INTO mirror_observations
    (run_id, target, repository, tag, seen, source_digest, target_digest, action, reason,
     kind, drift)
    VALUES (:run_id, :target, :repository, :tag, :seen, :source_digest, :target_digest,
     :action, :reason, :kind, :drift)"""

INSERT_WRITE = """INSERT INTO mirror_writes (run_id, target, repository, tag, digest, mirrored)
    VALUES (:run_id, :target, :repository, :tag, :digest, :mirrored)"""

# Observations that looked at the tag (the selector's skips carry no digest on either side).
LATEST_LOOK_BEFORE = """SELECT seen, source_digest, target_digest FROM mirror_observations
    WHERE repository = :repository AND tag = :tag
      AND (source_digest IS NOT NULL OR target_digest IS NOT NULL)
      AND (CAST(:target AS TEXT) IS NULL OR target = :target)
      AND seen <= :when
    ORDER BY seen DESC LIMIT 1"""

LATEST_WRITE_BEFORE = """SELECT mirrored, digest FROM mirror_writes
    WHERE repository = :repository AND tag = :tag
      AND (CAST(:target AS TEXT) IS NULL OR target = :target)
      AND mirrored <= :when
    ORDER BY mirrored DESC LIMIT 1"""

LAST_MIRRORED = """SELECT MAX(mirrored) FROM mirror_writes
    WHERE repository = :repository AND tag = :tag AND digest = :digest
      AND (CAST(:target AS TEXT) IS NULL OR target = :target)
      AND mirrored <= :when"""

NEWEST_SOURCE_DIGEST = """SELECT seen, source_digest FROM mirror_observations
    WHERE repository = :repository AND tag = :tag AND source_digest IS NOT NULL
      AND (CAST(:target AS TEXT) IS NULL OR target = :target)
    ORDER BY seen DESC LIMIT 1"""

NEWEST_TARGET_DIGEST = """SELECT seen, target_digest FROM mirror_observations
    WHERE repository = :repository AND tag = :tag AND target_digest IS NOT NULL
      AND (CAST(:target AS TEXT) IS NULL OR target = :target)
    ORDER BY seen DESC LIMIT 1"""

NEWEST_WRITE = """SELECT mirrored, digest FROM mirror_writes
    WHERE repository = :repository AND tag = :tag
      AND (CAST(:target AS TEXT) IS NULL OR target = :target)
    ORDER BY mirrored DESC LIMIT 1"""

DRIFT_EVENTS = """SELECT repository, tag, target_digest, source_digest, MIN(seen) AS first_seen,
      MAX(seen), COUNT(*)
    FROM mirror_observations
    WHERE drift = 1
      AND (CAST(:repository AS TEXT) IS NULL OR repository = :repository)
      AND (CAST(:target AS TEXT) IS NULL OR target = :target)
    GROUP BY repository, tag, target_digest, source_digest
    ORDER BY first_seen"""

TAGS = """SELECT DISTINCT tag FROM mirror_observations
    WHERE repository = :repository
      AND (source_digest IS NOT NULL OR target_digest IS NOT NULL)
      AND (CAST(:target AS TEXT) IS NULL OR target = :target)
    UNION SELECT DISTINCT tag FROM mirror_writes
    WHERE repository = :repository
      AND (CAST(:target AS TEXT) IS NULL OR target = :target)"""

LOOKS = """SELECT tag, seen, source_digest, target_digest FROM mirror_observations
    WHERE repository = :repository
      AND (source_digest IS NOT NULL OR target_digest IS NOT NULL)
      AND (CAST(:tag AS TEXT) IS NULL OR tag = :tag)
      AND (CAST(:target AS TEXT) IS NULL OR target = :target)"""

WRITES = """SELECT tag, mirrored, digest FROM mirror_writes
    WHERE repository = :repository
      AND (CAST(:tag AS TEXT) IS NULL OR tag = :tag)
      AND (CAST(:target AS TEXT) IS NULL OR target = :target)"""

TAGS_WITH_SOURCE_DIGEST = """SELECT DISTINCT tag FROM mirror_observations
    WHERE repository = :repository AND source_digest = :digest
      AND (CAST(:target AS TEXT) IS NULL OR target = :target)"""

TAGS_WITH_TARGET_DIGEST = """SELECT DISTINCT tag FROM mirror_observations
    WHERE repository = :repository AND target_digest = :digest
      AND (CAST(:target AS TEXT) IS NULL OR target = :target)
    UNION SELECT DISTINCT tag FROM mirror_writes
    WHERE repository = :repository AND digest = :digest
      AND (CAST(:target AS TEXT) IS NULL OR target = :target)"""

# The latest decision about each tag of a repository (what `mirror serve` shows).
LATEST_DECISIONS = """SELECT o.tag, o.action, o.reason, o.kind, o.source_digest, o.target_digest,
      o.seen
    FROM mirror_observations o
    JOIN (SELECT tag, MAX(seen) AS seen FROM mirror_observations
          WHERE repository = :repository
            AND (CAST(:target AS TEXT) IS NULL OR target = :target)
          GROUP BY tag) latest
      ON o.tag = latest.tag AND o.seen = latest.seen
    WHERE o.repository = :repository
      AND (CAST(:target AS TEXT) IS NULL OR o.target = :target)"""

LATEST_WRITES = """SELECT w.tag, w.digest, w.mirrored
    FROM mirror_writes w
    JOIN (SELECT tag, MAX(mirrored) AS mirrored FROM mirror_writes
          WHERE repository = :repository
            AND (CAST(:target AS TEXT) IS NULL OR target = :target)
          GROUP BY tag) latest
      ON w.tag = latest.tag AND w.mirrored = latest.mirrored
    WHERE w.repository = :repository
      AND (CAST(:target AS TEXT) IS NULL OR w.target = :target)"""

# --- the service's trigger queue ------------------------------------------------------

ENQUEUE_TRIGGER = """INSERT INTO mirror_triggers
    (id, dedupe_key, target, kind, scope, detail, received, state)
    VALUES (:id, :dedupe_key, :target, :kind, :scope, :detail, :received, 'pending')
    ON CONFLICT (target, dedupe_key) DO NOTHING
    RETURNING id"""

# Claimed by a process that died: back in the queue (only the run lock's holder asks).
REQUEUE_ABANDONED = """UPDATE mirror_triggers SET state = 'pending', claimed_by = NULL
    WHERE target = :target AND state = 'claimed'"""

CLAIM_PENDING = """UPDATE mirror_triggers SET state = 'claimed', claimed_by = :claimer
    WHERE target = :target AND state = 'pending'
    RETURNING id, kind, scope, detail, received"""

FINISH_CLAIMED = """UPDATE mirror_triggers SET state = :state, run_id = :run_id,
      finished = :finished
    WHERE target = :target AND state = 'claimed' AND claimed_by = :claimer"""

PENDING_TRIGGERS = """SELECT id, kind, scope, detail, received, state FROM mirror_triggers
    WHERE target = :target AND state IN ('pending', 'claimed')
    ORDER BY received"""

# --- referrers surveyed (schema 3) -------------------------------------------------

REMEMBER_REFERRERS = """INSERT INTO mirror_referrers
    (target, repository, root, subject, fingerprint, checked)
    VALUES (:target, :repository, :root, :subject, :fingerprint, :checked)
    ON CONFLICT (target, repository, root, subject)
    DO UPDATE SET fingerprint = excluded.fingerprint, checked = excluded.checked"""

REFERRER_MEMORY = """SELECT repository, root, subject, fingerprint FROM mirror_referrers
    WHERE target = :target"""

OWE_PROVENANCE = """INSERT INTO mirror_provenance_owed
    (target, repository, tag, digest, document, since)
    VALUES (:target, :repository, :tag, :digest, :document, :since)
    ON CONFLICT (target, repository, tag)
    DO UPDATE SET digest = excluded.digest, document = excluded.document"""

SETTLE_PROVENANCE = """DELETE FROM mirror_provenance_owed
    WHERE target = :target AND repository = :repository AND tag = :tag"""

PROVENANCE_OWED = """SELECT repository, tag, digest, document FROM mirror_provenance_owed
    WHERE target = :target ORDER BY repository, tag"""
