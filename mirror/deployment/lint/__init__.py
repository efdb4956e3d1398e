"""`mirror lint`: the rule catalog, the rules, the engine and the output formats.

- `catalog`: rule ids, default severities, production-checklist marks;
- `finding`: `Finding` and `Severity`;
- `context`: what a rule sees (`LintContext`) and returns (`Issue`);
- `structure`, `images`, `credentials`, `containers`, `edgehub`: the rules;
- `engine`: `lint_manifest`, `lint_source`, `lint_paths`, grading and profiles;
- `output`: text, JSON and SARIF 2.1.0 renderings.
"""
