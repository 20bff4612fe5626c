"""The record's FHIR R4 face (DESIGN.md §1 `ehr/fhir/`): the same record through the same gate.

Every FHIR read and search goes through the records repository and the consent decision point
exactly as the JSON API does; this package only changes the shape of what leaves.
"""
