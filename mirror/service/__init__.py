"""`mirror serve`: the long-running service. It syncs on a schedule and whenever a new
runtime release appears, on the same engine as `mirror sync`.

- `service`: the `Service` itself: the worker, the schedules and watchers, start and stop;
- `worker`: one sync at a time; triggers that queue up meanwhile make one follow-up run;
- `triggers`: what starts a run (schedules, the release feed, GitHub, rolling tags
  upstream, webhooks), each with the scope of tags it touches;
- `feed`, `github`, `watch`: the release signals polled;
- `hooks`: where webhooks come in (GitHub, ACR, a plain `sync` request);
- `app`: the HTTP endpoints (Starlette): health, readiness, metrics, status, webhooks;
- `metrics`, `status`, `page`, `openapi`: what the service shows;
- `notify`: a signed summary of every run, sent to configured URLs.
"""
