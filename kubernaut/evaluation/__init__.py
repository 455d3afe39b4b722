"""``kubernaut eval``: reproduce incidents on a cluster, ask the analysis, grade its answers.

Modules, one job each: :mod:`scenario` (the YAML format of ``evals/README.md``), :mod:`cluster`
(setup and teardown on a real API server), :mod:`grading` (pure grading rules), :mod:`runner`
(scenarios side by side) and :mod:`report` (progress, tables, JSON and Markdown).
"""
