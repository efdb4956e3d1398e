"""IoT Edge deployment manifests: reading them, rewriting their images, linting them.

This package owns the pure logic behind `mirror rewrite` and `mirror lint`:

- `document`: a JSON reader that keeps the source position of every value;
- `shape`: the manifest shapes (plain, `content` wrapper, legacy, layered, templates)
  and the modules, images, environment and registry credentials they declare;
- `images`: what an image string is (reference, placeholder, `$upstream`, invalid);
- `create_options`: chunked Docker create options, joined and parsed;
- `runtime`: edgeAgent/edgeHub version tags and the runtime lines they belong to;
- `edits`: surgical splices of the source text (the manifest is never re-serialised);
- `rewrite`: pointing images at the mirror, through an injected resolver;
- `registry`: what the target holds: pins looked up there, rewritten images checked;
- `lint`: the rule catalog, the rules, and the text/JSON/SARIF renderings;
- `settings`: the user-settable configuration of both commands.

Nothing here opens a connection or reads the command line: registry access comes in
as a `Store` the caller opened.
"""
