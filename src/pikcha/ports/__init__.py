"""The roles Pikcha plays against the outside world, one interface each.

Each port documents its contract once; every adapter of it, the in-memory ones
included, passes the same contract suite under ``tests/contract/``.
"""

from pikcha.ports.crm import Change, CrmStore, UpsertReport
from pikcha.ports.event_log import Consumer, EventLog, Message, OutgoingMessage
from pikcha.ports.features import FeatureEngine, FeatureRow
from pikcha.ports.notifier import Alert, Notifier
from pikcha.ports.objects import ObjectInfo, ObjectStore
from pikcha.ports.warehouse import ProjectedEvent, RawEvent, Reconciliation, Warehouse

__all__ = [
    "Alert",
    "Change",
    "Consumer",
    "CrmStore",
    "EventLog",
    "FeatureEngine",
    "FeatureRow",
    "Message",
    "Notifier",
    "ObjectInfo",
    "ObjectStore",
    "OutgoingMessage",
    "ProjectedEvent",
    "RawEvent",
    "Reconciliation",
    "UpsertReport",
    "Warehouse",
]
