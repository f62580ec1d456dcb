"""Seeded generator of STV-style samples: scenes, tasks, references and completions of known quality.

Why it exists: the service's quality bars (design.md) are measured on a "standard mix" of synthetic
tasks and its limits (reward-spec.md section 4) on worst-case inputs; both must be reproducible from
a seed without downloading STV-205k (the Video-STR paper's video spatio-temporal QA data set). It
needs only numpy and the scoring core (whose limits it takes), so it imports wherever the core does.

The entry points, by module (this package re-exports nothing):

* `reward_service.synth.scenes.generate_scene(rng, ...) -> Scene`: a room or street over sampled
  frames (`Scene.graph()` is its reference graph).
* `reward_service.synth.tasks.generate_task(rng, task_type, with_graph, scene=None) -> Task`: a task
  of one of the five task types (`reward_service.scoring.TASK_TYPES`). A `Task` has `reference` (the
  reference dict, ready to post: task_type, answer, options for multiple choice, graph and
  graph_scale when asked for), `question` (the question text; for multiple choice the options are
  listed in it too), `scene` and `unit` (of a numerical answer), and `task_type`.
* `reward_service.synth.completions.make_completion(rng, task, quality, noise=0.1, kind=None) -> str`:
  a completion of a `quality` of `QUALITIES` ("exact", "noisy", "wrong", "malformed",
  "adversarial"; the last two take a `kind` of `faults.MALFORMED_KINDS` / `faults.ADVERSARIAL_KINDS`).
* `reward_service.synth.mixes.standard_mix(n, seed=0) -> list[dict]`: design.md's standard mix, items
  ready to post to /v1/rewards (id, group_id, completion, reference, num_tokens) in GRPO groups of 8;
  `labelled_mix(n, seed)` gives the same items with each one's grade ("exact", "close", "noisy",
  "malformed:<kind>", "adversarial:<kind>": how good the completion is, which is not a `quality`
  argument of make_completion, hence another name).
* `reward_service.synth.mixes.worst_case_items() -> list[dict]`: items at every limit of section 4.
* `reward_service.synth.mixes.write_jsonl(path, items) -> int`.

    rng = np.random.default_rng(0)
    task = generate_task(rng, "numerical", with_graph=True)
    text = make_completion(rng, task, "noisy", noise=0.2)
    items = standard_mix(512, seed=1)  # 64 GRPO groups of 8 rollouts, ready to post

Modules, bottom up: common (seeded picks, rounding), scenes, tasks, render (answer and graph text,
answer values), faults (malformed and adversarial kinds), completions, mixes.
"""
