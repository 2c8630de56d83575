package main

import (
	"encoding/json"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/mlsteps/mlsteps/orchestrate/pipeline"
	"github.com/mlsteps/mlsteps/steps/step"
)

// shardPlanCommand prints the shard list a fan-out iterates over: the
// planning task of a sharded step in an Argo workflow (its stdout is the
// task's result, which withParam reads).
func shardPlanCommand(opts options) *cli.Command {
	return &cli.Command{
		Name:         "shard-plan",
		Usage:        "print the shards of a sharded step as a JSON list (\"0/N\", …), for an orchestrator to fan out over",
		OnUsageError: usageError,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "shards", Usage: "how many shards (`N`)", Required: true},
		},
		Action: func(c *cli.Context) error {
			n := c.Int("shards")
			if n < 1 || n > pipeline.MaxShards {
				return step.Usagef("--shards %d: want 1 to %d", n, pipeline.MaxShards)
			}
			data, err := json.Marshal(step.Shards(n))
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(opts.Stdout, string(data))
			return err
		},
	}
}
