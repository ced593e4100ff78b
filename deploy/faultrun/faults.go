package main

import (
	"context"
	"fmt"
	"time"

	"github.com/sigfollow/media/shared/fakegraph"
)

// step is one fault of the schedule, after a pause.
type step struct {
	after time.Duration
	name  string
	do    func(ctx context.Context) error
}

type schedule []step

func (sc schedule) length() time.Duration {
	var d time.Duration
	for _, st := range sc {
		d += st.after
	}
	return d
}

// schedule is one round of faults: every part of the stack fails once.
func (s *stack) schedule() schedule {
	down := 2 * time.Second // how long NATS and MinIO stay down
	return schedule{
		{2 * time.Second, "SIGKILL worker-1 mid-upload, restart it", func(ctx context.Context) error {
			s.graph.SetLatency(1500 * time.Millisecond) // uploads are in flight when it dies
			defer s.graph.SetLatency(0)
			time.Sleep(time.Second)
			s.killWorker(0)
			return s.startWorker(ctx, 0)
		}},
		{2 * time.Second, "Meta fails: 5xx, 429 and dropped connections", func(context.Context) error {
			s.graph.InjectFault(fakegraph.Fault{Kind: "5xx", Count: 8})
			s.graph.InjectFault(fakegraph.Fault{Kind: "429", Count: 8})
			s.graph.InjectFault(fakegraph.Fault{Kind: "drop", Count: 3})
			return nil
		}},
		{2 * time.Second, fmt.Sprintf("NATS down for %v", down), func(context.Context) error {
			s.stopNATS()
			time.Sleep(down)
			return s.startNATS()
		}},
		{2 * time.Second, fmt.Sprintf("MinIO killed for %v", down), func(ctx context.Context) error {
			s.minio.Kill()
			time.Sleep(down)
			return s.minio.Restart(ctx)
		}},
		{2 * time.Second, "rolling restart: SIGTERM each worker, start it again", func(ctx context.Context) error {
			for i := range s.cfg.Workers {
				if err := s.stopWorker(i); err != nil {
					return fmt.Errorf("worker-%d: %w", i+1, err)
				}
				if err := s.startWorker(ctx, i); err != nil {
					return err
				}
			}
			return nil
		}},
		{2 * time.Second, "SIGKILL the last worker, restart it", func(ctx context.Context) error {
			last := s.cfg.Workers - 1
			s.killWorker(last)
			return s.startWorker(ctx, last)
		}},
	}
}

// injectFaults runs the schedule Rounds times, or until ctx is done.
func (s *stack) injectFaults(ctx context.Context) error {
	for round := range s.cfg.Rounds {
		for _, st := range s.schedule() {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(st.after):
			}
			s.log.Info("fault", "round", round+1, "step", st.name)
			if err := st.do(ctx); err != nil {
				return fmt.Errorf("%s: %w", st.name, err)
			}
		}
	}
	return nil
}
