package process

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Pulling.
const (
	// pullWait is how long one pull request waits for jobs. A stop waits at
	// most this long for the pull in flight, whose jobs then go straight
	// back to the queue.
	pullWait = time.Second
	// pullPauseMin and pullPauseMax bound the pause after a failed pull.
	pullPauseMin = 100 * time.Millisecond
	pullPauseMax = 5 * time.Second
)

// Run pulls jobs from cons and handles them, at most Concurrency at a time,
// until ctx is done. It then stops pulling, waits up to ShutdownTimeout for
// the jobs in flight, hands the unfinished ones back to the queue and
// returns.
func (p *Processor) Run(ctx context.Context, cons jetstream.Consumer) {
	// Jobs run on their own context, cancelled only when the shutdown
	// timeout runs out.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	var inflight sync.WaitGroup
	p.Log.Info("pulling jobs", "concurrency", p.cfg.Concurrency)
	p.pull(ctx, cons, func(msg jetstream.Msg, release func()) {
		inflight.Go(func() {
			defer release()
			p.handle(work, msg)
		})
	})

	idle := make(chan struct{})
	go func() { inflight.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-time.After(p.cfg.ShutdownTimeout):
		p.Log.Warn("shutdown timeout reached; handing unfinished jobs back to the queue", "timeout", p.cfg.ShutdownTimeout)
		cancelWork()
		<-idle
	}
	p.Log.Info("stopped pulling jobs; none in flight")
}

// pull fetches jobs while it has free slots, only as many as it has free
// slots for, and passes each to dispatch with the function that frees its
// slot. Jobs that arrive after ctx is done go back to the queue at once.
func (p *Processor) pull(ctx context.Context, cons jetstream.Consumer, dispatch func(jetstream.Msg, func())) {
	slots := make(chan struct{}, p.cfg.Concurrency)
	release := func() { <-slots }
	pause := pullPauseMin
	for ctx.Err() == nil {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		free := 1
	fill:
		for free < cap(slots) {
			select {
			case slots <- struct{}{}:
				free++
			default:
				break fill
			}
		}

		batch, err := cons.Fetch(free, jetstream.FetchMaxWait(pullWait))
		if err == nil {
			for msg := range batch.Messages() {
				free--
				if ctx.Err() != nil {
					if err := msg.Nak(); err != nil {
						p.Log.Warn("handing a job back failed; it returns after the ack wait", "err", err)
					}
					release()
					continue
				}
				dispatch(msg, release)
			}
			err = batch.Error()
		}
		for range free {
			release()
		}
		if err == nil {
			pause = pullPauseMin
			continue
		}
		p.Log.Warn("pulling jobs failed; retrying", "err", err, "in", pause)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, pullPauseMax)
	}
}
