"""One family of errors; each message is the one line the CLI prints."""

from __future__ import annotations


class HarnessError(Exception):
    """Base of every error the harness raises on purpose.

    ``exit_code`` is what the CLI exits with; the message names what failed and the fix.
    """

    exit_code = 1


class ConfigError(HarnessError):
    """A setting, option or input file is wrong."""

    exit_code = 2


class DatasetError(HarnessError):
    """A dataset file is missing, not SQLite, or not the reference schema."""

    exit_code = 3


class DatabaseError(HarnessError):
    """A database server cannot be reached or refuses us (never echoes the password)."""

    exit_code = 4


class ServiceError(HarnessError):
    """An embedded PostgreSQL or Redis could not be started, found or stopped."""

    exit_code = 5


# A finished open-model run whose load generator could not keep its schedule (scheduler lag
# or CPU): its latency figures describe the generator, not the target. Beside the run exit
# codes of harness.sla (10 an SLA failed, 11 interrupted) and harness compare's 12.
EXIT_GENERATOR_LIMITED = 13
