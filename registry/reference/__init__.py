"""Pure reference data and validators of the record: identifiers, ICD-10, observations, vaccines."""
