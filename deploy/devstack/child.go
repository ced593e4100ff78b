package main

import (
	"fmt"
	"log/slog"
	"os/exec"
	"syscall"
	"time"
)

// exit reports that a part of the stack ended.
type exit struct {
	name string
	err  error // nil for a clean exit
}

// child is a pipeline binary devstack runs as a child process.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
	err  error         // its exit status, once done
}

// startChild starts bin with devstack's environment plus env (later
// entries win), its output going to out. When it exits, it is reported on
// exits, which must have room for every child.
func startChild(name, bin string, env []string, out *lineWriter, exits chan<- exit) (*child, error) {
	cmd := exec.Command(bin)
	cmd.Env = append(cmd.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own process group keeps the terminal's Ctrl-C from reaching
		// it directly, so devstack decides the order things stop in.
		Setpgid: true,
		// If devstack dies without stopping it, it is told to stop.
		Pdeathsig: syscall.SIGTERM,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		out.Flush()
		close(c.done)
		exits <- exit{name: name, err: c.err}
	}()
	return c, nil
}

// stop sends SIGTERM and waits for the child to exit, killing it after
// timeout or as soon as force is closed. A child that has already exited
// is only reported.
func (c *child) stop(timeout time.Duration, force <-chan struct{}, log *slog.Logger) {
	select {
	case <-c.done:
	default:
		c.terminate(timeout, force, log)
	}
	if c.err != nil {
		log.Warn("stopped", "process", c.name, "status", c.err.Error())
		return
	}
	log.Info("stopped", "process", c.name)
}

func (c *child) terminate(timeout time.Duration, force <-chan struct{}, log *slog.Logger) {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.done:
		return
	case <-t.C:
		log.Warn("did not stop in time; killing it", "process", c.name, "timeout", timeout)
	case <-force:
	}
	_ = c.cmd.Process.Kill()
	<-c.done
}
