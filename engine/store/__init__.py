"""The shared data layer on Delta Lake: tables, feature groups, registry, feature views."""
