// Package submit sends compiled pipelines to the servers that run them:
// Argo Server's REST API (create a Workflow in a namespace, then follow its
// phase) and Kubeflow Pipelines' v2beta1 REST API (find or create the
// pipeline, upload a version, create a run, then follow its state).
//
//	c := &submit.Argo{Server: "https://argo.example:2746", Token: tok}
//	name, err := c.Create(ctx, "ml", workflow)
//	phase, err := c.Wait(ctx, "ml", name, 5*time.Second)
//
// Requests carry `Authorization: Bearer <token>` when a token is set.
// Backends never retry; Wait polls until a terminal phase or ctx ends.
//
// # Errors
//
// A non-2xx answer is an *HTTPError with the status and the server's
// message.
package submit
