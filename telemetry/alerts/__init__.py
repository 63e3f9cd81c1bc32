"""Alerts: rules watching the analytics' metrics (docs/alerts.md, "Rules"), their evaluation
into alert instances ("Evaluation"), and notifications delivered to webhook, Slack, email and
PagerDuty channels ("Channels")."""

from telemetry.alerts.channel_config import (
    ChannelConfig,
    SecretError,
    resolve_secrets,
    seal_secrets,
)
from telemetry.alerts.delivery import DeliveryResult, deliver, deliver_all, test_message
from telemetry.alerts.evaluation import Delivery, Outcome, evaluate_rule
from telemetry.alerts.evaluator import AlertEvaluator, evaluate_all
from telemetry.alerts.notification import Notification, fingerprint_of
from telemetry.alerts.rule import AlertRule, RuleError, check_rule
from telemetry.alerts.rule_parsing import parse_rule

__all__ = [
    "AlertEvaluator",
    "AlertRule",
    "ChannelConfig",
    "Delivery",
    "DeliveryResult",
    "Notification",
    "Outcome",
    "RuleError",
    "SecretError",
    "check_rule",
    "deliver",
    "deliver_all",
    "evaluate_all",
    "evaluate_rule",
    "fingerprint_of",
    "parse_rule",
    "resolve_secrets",
    "seal_secrets",
    "test_message",
]
