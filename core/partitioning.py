"""Which tables are per person, by which column they are partitioned on PostgreSQL, and the
exact schema differences that partitioning leaves between the models and PostgreSQL.

Migration 0013 hash-partitions these tables by their citizen column on PostgreSQL (SQLite is
left as it is). PostgreSQL requires every primary key and unique constraint of a partitioned
table to carry the partition column, and a foreign key into a partitioned table to name a
unique key of it, so on PostgreSQL a few constraints are wider than the models declare. The
models keep the logical form (SQLite enforces exactly that); each wider form is listed below
with why it guarantees the same thing, and the schema comparison ignores exactly those.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PARTITIONS = 16
# The partitions live in their own schema next to the application's (`public_partitions`).
PARTITION_SCHEMA_SUFFIX = "_partitions"

# Per-person table -> partition column. One citizen's rows all land in one partition (and, with
# Citus, on one shard): the record, its audit chain, its consents and notifications.
PARTITIONED: dict[str, str] = {
    "record_entries": "citizen_id",
    "record_entry_versions": "citizen_id",
    "audit_events": "citizen_id",
    "audit_chain_heads": "citizen_id",
    "consents": "citizen_id",
    # Guardianships are read by the dependant's record decisions (may this guardian read the
    # child's record?); the guardian's own list is the rarer read and scans all partitions.
    "guardianships": "dependant_citizen_id",
    # An inbox item lives with the person it is about (its vault key is theirs: erasure).
    "notifications": "subject_citizen_id",
    # Copied from the notification (migration 0013 adds it) so a delivery is co-located with it.
    "notification_deliveries": "citizen_id",
    "idempotency_records": "citizen_id",
}

# Tables with a citizen column that stay unpartitioned, and why.
NOT_PARTITIONED: dict[str, str] = {
    "citizens": "the partition key itself: one row per person, looked up by id and blind index",
    "accounts": "an identity, looked up by username/phone/subject at login, not by citizen",
    "account_codes": "short-lived one-time codes looked up by code hash; a handful per person",
    "vault_data_keys": "the key vault: looked up by key id on every decryption; small",
    "family_doctor_assignments": "the doctor's panel reads it by practitioner; small",
    "access_digests": "one row per (citizen, reader): a rate limiter of digests; small",
    "access_log_flags": "rare; reviewed by facility; references audit events by (id, citizen)",
    "access_requests": "read by the practitioner who asked as much as by the citizen; small",
    "break_glass_sessions": "reviewed by facility; few rows",
    "guardian_claims": "a claim names two citizens; rare; references guardianships by dependant",
    "guardian_claim_failures": "a per-day failure counter; small",
    "share_links": "looked up by the link's token hash without knowing the citizen",
    "share_link_openings": "a link's opening log; small",
}

# Constraints whose PostgreSQL form is wider than the model's. name -> PostgreSQL columns, or
# (columns, referred table, referred columns) for a foreign key.
WIDER_UNIQUES: dict[str, tuple[str, ...]] = {
    # An entry's versions have the entry's citizen (the composite foreign key below forces it):
    # adding it changes nothing.
    "uq_record_entry_versions_entry_id": ("entry_id", "version", "citizen_id"),
    # The key hashes the trigger, recipient and the fact (an entry id...): the same fact about
    # the same person still notifies once; only the same fact about two persons no longer
    # collides, which is two notifications anyway.
    "uq_notifications_dedup_key": ("dedup_key", "subject_citizen_id"),
    # Derived from the notification's key: narrowed exactly as that one.
    "uq_notification_deliveries_dedup_key": ("dedup_key", "citizen_id"),
    # A retry of a create (same client, account, key) is about the same person and still loses
    # on this key; only one key reused at the same instant for two persons' creates passes both
    # (a client error: two distinct creates, each checked for its own person; lookup tolerates
    # the pair and answers the mismatch with 422).
    "uq_idempotency_records_scope": ("scope", "citizen_id"),
}

WIDER_FOREIGN_KEYS: dict[str, tuple[tuple[str, ...], str, tuple[str, ...]]] = {
    "fk_record_entry_versions_entry_id_record_entries":
        (("entry_id", "citizen_id"), "record_entries", ("id", "citizen_id")),
    "fk_notification_deliveries_notification_id_notifications":
        (("notification_id", "citizen_id"), "notifications", ("id", "subject_citizen_id")),
    "fk_access_log_flags_audit_event_id_audit_events":
        (("audit_event_id", "citizen_id"), "audit_events", ("id", "citizen_id")),
    "fk_access_requests_consent_id_consents":
        (("consent_id", "citizen_id"), "consents", ("id", "citizen_id")),
    "fk_guardian_claims_guardianship_id_guardianships":
        (("guardianship_id", "dependant_citizen_id"), "guardianships",
         ("id", "dependant_citizen_id")),
}


def _is_wider_form(obj: Any, type_: str) -> bool:
    name = getattr(obj, "name", None)
    if type_ == "unique_constraint":
        return tuple(c.name for c in obj.columns) == WIDER_UNIQUES.get(name)
    if type_ == "foreign_key_constraint":
        expected = WIDER_FOREIGN_KEYS.get(name)
        if expected is None:
            return False
        columns, referred_table, referred_columns = expected
        return (tuple(obj.column_keys) == columns
                and obj.referred_table.name == referred_table
                and tuple(e.column.name for e in obj.elements) == referred_columns)
    return False


def _is_partition_clone(obj: Any) -> bool:
    # PostgreSQL implements a foreign key into a partitioned table as the declared constraint
    # plus one internal copy per partition (pg_constraint.conparentid set); reflection lists the
    # copies as foreign keys into `<schema>_partitions.<table>_pNN`.
    referred = obj.referred_table
    return (referred.schema is not None and referred.schema.endswith(PARTITION_SCHEMA_SUFFIX)
            and referred.name.rpartition("_p")[0] in PARTITIONED)


def comparison_filter(dialect_name: str) -> Callable[..., bool] | None:
    """An Alembic `include_object` that, on PostgreSQL, skips exactly the constraints listed
    above: the reflected wider form (checked column by column) and the model's logical form of
    the same name, and the per-partition copies of the foreign keys into partitioned tables.
    None elsewhere: SQLite carries the models' schema unchanged."""
    if dialect_name != "postgresql":
        return None
    names = set(WIDER_UNIQUES) | set(WIDER_FOREIGN_KEYS)

    def include_object(obj: Any, name: str | None, type_: str, reflected: bool,
                       compare_to: Any) -> bool:
        if type_ == "foreign_key_constraint" and reflected and _is_partition_clone(obj):
            return False
        if type_ not in ("unique_constraint", "foreign_key_constraint") or name not in names:
            return True
        if reflected:
            return not _is_wider_form(obj, type_)
        return False

    return include_object
