// Package deploy is the deploy step, TFX's InfraValidator and Pusher in
// one: a Model reaches serving only if its Blessing blesses it and it
// really loads and answers in a serving process.
//
//	mlsteps deploy --in model=MODEL --in blessing=BLESSING --in examples=DATASET \
//	    --registry s3://ml/registry --name penguins --out-root s3://ml/runs/42/deploy
//
// The steps, in order:
//
//  1. The Blessing must bless the model (and be a verdict on this very
//     model, by digest); a missing one is a usage error unless
//     --skip-blessing, which is recorded. A "no" is exit 3 and writes no
//     PushedModel: the reason is logged and kept in the execution record
//     (so is a refusal by infra validation).
//  2. Infra validation starts `mlsteps serve` on the model in a separate
//     process, through the hidden `mlsteps infra-serve` command, which
//     sets RLIMIT_AS (address space, so a limit below the serving
//     process's reservations makes it fail at start or at load) and then
//     execs serve. The canary rows (the first --canary-rows rows of the
//     examples, zeros without them) go to it over KServe V2, and every
//     output must match the in-process engine's within --tolerance. The
//     whole exchange is bounded by --infra-timeout: a model that crashes,
//     hangs or answers differently is refused (exit 3).
//  3. The push: the Model is copied into a newly claimed version of the
//     registry (components/registry) and re-hashed there, the version is
//     recorded, and the registry's pointer switched, last.
//  4. The PushedModel holds pushed_model.json and serving manifests:
//     manifests/inferenceservice.yaml (KServe v1beta1) and
//     manifests/deployment.yaml (a Deployment running `mlsteps serve
//     --watch NAME=<registry>/<name>/current`, readiness on
//     /v2/health/ready, and its Service), so a later push or a
//     `mlsteps registry rollback` reaches running servers without a
//     redeploy.
//
// The mlsteps binary for the serving process is this process's own
// executable, or $MLSTEPS_BIN (tests, whose executable is the test binary).
//
// # Errors
//
// Exit 2 for a missing blessing, a blessing of another model, a bad name
// or registry URL, a keyed model to validate, examples without the
// model's columns; exit 3 when the blessing says no or infra validation
// refuses; exit 1 when storage fails.
package deploy
