package localstack

import (
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSConfig places an embedded NATS server.
type NATSConfig struct {
	// Host and Port to listen on; Port -1 picks a free port.
	Host string
	Port int
	// StoreDir holds JetStream's file storage.
	StoreDir string
	// ServerName names the server in logs and cluster views.
	ServerName string
	// MaxPayload caps a message's size; 0 keeps the server's default
	// (1 MiB).
	MaxPayload int32
}

// StartNATS starts a NATS server with JetStream in this process and waits
// until it accepts connections.
func StartNATS(cfg NATSConfig) (*server.Server, error) {
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	opts := &server.Options{
		ServerName: cfg.ServerName,
		Host:       cfg.Host,
		Port:       cfg.Port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true,
		NoLog:      true,
		// Room for 64 concurrent 16 MiB uploads' jobs is tiny; the limits
		// guard against a runaway test rather than size production.
		JetStreamMaxMemory: 256 << 20,
		JetStreamMaxStore:  4 << 30,
		MaxPayload:         cfg.MaxPayload,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("localstack: nats: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("localstack: nats did not become ready on %s:%d", cfg.Host, cfg.Port)
	}
	return s, nil
}
