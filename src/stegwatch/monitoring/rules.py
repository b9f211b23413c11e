"""Threshold rules as configuration, and the alerts they raise.

A rule is data (TOML): a metric (dotted path into the metrics JSON, ``*``
matching every key at that level), a condition (``gt``, ``gte``, ``lt``,
``lte``), a threshold and a severity. ``kind = "change"`` compares the
metric with the same metric of the baseline run (``relative = true`` for a
fraction of the baseline value). ``unless`` names a rule that, when it fires
on the same metric family, silences this one (the FPR warning stays quiet
when the critical point-estimate rule fires).
"""

from __future__ import annotations

import operator
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from stegwatch.errors import ConfigError
from stegwatch.stats import significant_change

DEFAULT_RULES = Path(__file__).parent / "default_rules.toml"
CONDITIONS = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}
SEVERITIES = ("warning", "critical")


@dataclass(frozen=True)
class Rule:
    name: str
    metric: str
    condition: str
    threshold: float
    severity: str
    kind: str = "value"
    relative: bool = False
    description: str = ""
    unless: str | None = None
    #: For change rules on a method's detection rate: run an exact McNemar test on the
    #: paired per-file decisions of the two runs and report whether the change is significant.
    paired_test: bool = False


@dataclass
class Alert:
    """One rule firing on one metric of one run."""

    rule: str
    severity: str
    metric: str
    value: float
    threshold: float
    condition: str
    kind: str
    run_id: str
    model: str
    description: str
    baseline_value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    paired_test: dict | None = None
    #: Cover groups among the ``n`` files, and the interval over them (rates recorded before schema 2 have none).
    n_groups: int | None = None
    group_ci_low: float | None = None
    group_ci_high: float | None = None

    @property
    def fingerprint(self) -> str:
        """Same rule, same metric, same model: the same alert while the condition persists."""
        return f"{self.model}|{self.rule}|{self.metric}"

    def message(self) -> str:
        interval = f" (95% CI {self.ci_low:.4%} to {self.ci_high:.4%}, n={self.n})" if self.ci_low is not None else ""
        if self.group_ci_low is not None:
            interval = (f" (95% CI over {self.n_groups} cover groups {self.group_ci_low:.4%} to {self.group_ci_high:.4%}; "
                        f"files as independent {self.ci_low:.4%} to {self.ci_high:.4%}, n={self.n})")
        against = f" against baseline {self.baseline_value:.6g}" if self.baseline_value is not None else ""
        if self.paired_test:
            t = self.paired_test
            boot = t.get("cluster_bootstrap")
            if boot and boot.get("difference") is not None:
                verdict = "significant" if significant_change(boot) else "not significant"
                sign = boot.get("sign_test")
                signs = "" if sign is None else (f", sign test {sign['groups_up']} groups up, {sign['groups_down']} down, "
                                                 f"p={sign['p_value']:.3g}")
                against += (f" (paired cluster bootstrap over {boot['groups']} cover groups: {boot['difference']:+.4f}, "
                            f"95% interval {boot['ci_low']:+.4f} to {boot['ci_high']:+.4f}{signs}, {verdict}; file-level McNemar "
                            f"on {t['paired_files']} paired files: {t['only_before']} lost, {t['only_after']} gained, p={t['p_value']:.3g})")
            else:
                verdict = "significant" if t["p_value"] < 0.05 else "not significant"
                against += (f" (exact McNemar on {t['paired_files']} paired files: {t['only_before']} lost, "
                            f"{t['only_after']} gained, p={t['p_value']:.3g}, {verdict})")
        return (f"[{self.severity.upper()}] {self.rule}: {self.metric} = {self.value:.6g}{interval}{against}; "
                f"rule: {self.kind} {self.condition} {self.threshold:g} ({self.description}); run {self.run_id}, model {self.model}")

    def to_json_dict(self) -> dict:
        return asdict(self) | {"fingerprint": self.fingerprint, "message": self.message()}


def read_toml(path: str | Path) -> dict:
    """A TOML configuration file as a dict; a missing or malformed file is a :class:`ConfigError`."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the configuration: {exc}") from None


def rules_from_tables(tables: list) -> list[Rule]:
    """Rules from parsed ``[[rule]]`` tables, each checked (unknown fields, condition, severity, kind)."""
    known = {f.name for f in fields(Rule)}
    rules = []
    for raw in tables:
        name = raw.get("name", "?") if isinstance(raw, dict) else "?"
        if not isinstance(raw, dict):
            raise ConfigError("each [[rule]] must be a table")
        unknown, missing = set(raw) - known, {"name", "metric", "condition", "threshold", "severity"} - set(raw)
        if unknown or missing:
            problems = [f"unknown field(s) {', '.join(sorted(unknown))}"] if unknown else []
            problems += [f"missing {', '.join(sorted(missing))}"] if missing else []
            raise ConfigError(f"rule {name}: {'; '.join(problems)}")
        rule = Rule(**raw)
        for key in ("name", "metric", "condition", "severity", "kind", "description"):
            if not isinstance(getattr(rule, key), str):
                raise ConfigError(f"rule {name}: {key} must be text")
        if rule.condition not in CONDITIONS:
            raise ConfigError(f"rule {rule.name}: condition must be one of {', '.join(CONDITIONS)}")
        if rule.severity not in SEVERITIES:
            raise ConfigError(f"rule {rule.name}: severity must be warning or critical")
        if rule.kind not in ("value", "change"):
            raise ConfigError(f"rule {rule.name}: kind must be value or change")
        if not isinstance(rule.threshold, int | float) or isinstance(rule.threshold, bool):
            raise ConfigError(f"rule {rule.name}: threshold must be a number")
        if rule.unless is not None and not isinstance(rule.unless, str):
            raise ConfigError(f"rule {rule.name}: unless must name a rule")
        for key in ("relative", "paired_test"):
            if not isinstance(getattr(rule, key), bool):
                raise ConfigError(f"rule {rule.name}: {key} must be true or false")
        rules.append(rule)
    return rules


def load_rules(path: str | Path | None = None) -> list[Rule]:
    """Rules from a TOML file (``[[rule]]`` tables); the shipped defaults when ``path`` is None."""
    return rules_from_tables(read_toml(path or DEFAULT_RULES).get("rule", []))


#: What a dashboard shows as the target of a rule: the condition under which the rule stays quiet.
QUIET_WHEN = {"gt": "<=", "gte": "<", "lt": ">=", "lte": ">"}


def value_rule_for(rules: list[Rule], keys: tuple[str, ...]) -> Rule | None:
    """The first value rule whose metric pattern covers the concrete key path ``keys`` (``*`` matches one key)."""
    for rule in rules:
        parts = rule.metric.split(".")
        if rule.kind == "value" and len(parts) == len(keys) and all(p in ("*", k) for p, k in zip(parts, keys, strict=True)):
            return rule
    return None


def rule_holds(rule: Rule, value: float) -> bool:
    """True when ``value`` does not make ``rule`` fire."""
    return not CONDITIONS[rule.condition](value, rule.threshold)


def resolve(document: dict, path: str) -> dict[tuple[str, ...], object]:
    """Key paths matching the dotted ``path`` (``*`` = every key at that level) and their values.

    Keys are returned as tuples, since a key may itself contain a dot (``lsb.rgb``).
    """
    found: dict[tuple[str, ...], object] = {(): document}
    for part in path.split("."):
        nxt: dict[tuple[str, ...], object] = {}
        for keys, node in found.items():
            if not isinstance(node, dict):
                continue
            for key in (list(node) if part == "*" else ([part] if part in node else [])):
                nxt[(*keys, key)] = node[key]
        found = nxt
    return found


def lookup(document: dict, keys: tuple[str, ...]) -> object:
    node: object = document
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def check(metrics: dict, rules: list[Rule], baseline: dict | None = None) -> list[Alert]:
    """Every alert the rules raise on ``metrics`` (and, for change rules, against ``baseline``)."""
    run = metrics["run"]
    model = f"{run['model']['name']} {run['model']['version']}"
    alerts: list[Alert] = []
    for rule in rules:
        compare = CONDITIONS[rule.condition]
        for keys, value in resolve(metrics, rule.metric).items():
            concrete = ".".join(keys)
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            baseline_value = None
            measured = float(value)
            if rule.kind == "change":
                if baseline is None:
                    continue
                before = lookup(baseline, keys)
                if not isinstance(before, int | float):
                    continue
                baseline_value = float(before)
                measured = (measured - baseline_value) / baseline_value if rule.relative and baseline_value else measured - baseline_value
            if not compare(measured, rule.threshold):
                continue
            parent = lookup(metrics, keys[:-1])
            parent = parent if isinstance(parent, dict) else {}
            paired = None
            if rule.paired_test and baseline is not None and keys[0] == "detection_rate_by_method":
                group = f"method:{keys[1]}"
                before_d = (baseline.get("decisions") or {}).get(group)
                after_d = (metrics.get("decisions") or {}).get(group)
                if before_d and after_d:
                    from stegwatch.evaluation.metrics import mcnemar_exact, paired_bootstrap

                    paired = mcnemar_exact(before_d, after_d)
                    if after_d.get("groups"):
                        paired["cluster_bootstrap"] = paired_bootstrap(before_d, after_d, seed=0)
            alerts.append(Alert(
                rule=rule.name, severity=rule.severity, metric=concrete, value=measured, threshold=rule.threshold,
                condition=rule.condition, kind=rule.kind, run_id=run["run_id"], model=model, description=rule.description,
                baseline_value=baseline_value, ci_low=parent.get("ci_low"), ci_high=parent.get("ci_high"), n=parent.get("n"),
                paired_test=paired, n_groups=parent.get("n_groups"), group_ci_low=parent.get("group_ci_low"),
                group_ci_high=parent.get("group_ci_high"),
            ))
    # ``unless``: an alert is silenced by an alert of the named rule on the same metric family (the same concrete
    # path but its last key: false_positive_rate.rate silences false_positive_rate.group_upper_bound, and a category's
    # critical alert silences that category's warning only).
    unless = {r.name: r.unless for r in rules if r.unless}
    fired = {(a.rule, _family(a.metric)) for a in alerts}
    return [a for a in alerts if a.rule not in unless or (unless[a.rule], _family(a.metric)) not in fired]


def _family(metric: str) -> str:
    return metric.rsplit(".", 1)[0]


def status_of(alerts: list[Alert]) -> str:
    """Overall status of a run: ``critical``, ``warning`` or ``ok``."""
    if any(a.severity == "critical" for a in alerts):
        return "critical"
    return "warning" if alerts else "ok"
