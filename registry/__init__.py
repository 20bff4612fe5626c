"""Who exists: citizens (demographics, health ID rules), facilities, practitioners, family-doctor
assignments, and the reference data (ICD-10, vaccines, observation kinds, the EPI schedule).

Below `auth`, `consent` and `ehr`: every one of them names people and codes, none of them is
needed to know who exists.
"""
