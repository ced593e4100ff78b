package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sigfollow/media/shared/apikey"
)

const keysUsage = `usage:
  ingest keys create -name NAME -phone ID[,ID...] [-mode live|test] [-scope messages:send] [-require-signature]
        [-rate-per-minute N -rate-burst N]
        create a key and print it once (use -phone '*' for every phone number id)
  ingest keys list
        list keys (never their secret part)
  ingest keys revoke KEY_ID
        revoke a key: requests with it get 401 from then on
`

// runKeys manages API keys in the NATS key-value bucket ingest reads.
func runKeys(ctx context.Context, cfg Config, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		_, err := io.WriteString(stdout, keysUsage)
		return err
	}
	log := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	nc, _, topo, err := connectQueue(ctx, cfg, log)
	if err != nil {
		return fmt.Errorf("keys: reach NATS at %s: %w", cfg.NATSURL, err)
	}
	defer nc.Close()
	store := apikey.NewStore(topo.Keys)

	switch args[0] {
	case "create":
		return createKey(ctx, store, args[1:], stdout)
	case "list":
		return listKeys(ctx, store, stdout)
	case "revoke":
		if len(args) != 2 {
			return errors.New("keys revoke takes one key id\n" + keysUsage)
		}
		k, err := store.Revoke(ctx, args[1], time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %s (%s) at %s\n", k.ID, k.Name, k.RevokedAt.Format(time.RFC3339))
		return nil
	}
	return fmt.Errorf("keys: unknown command %q\n%s", args[0], keysUsage)
}

func createKey(ctx context.Context, store *apikey.Store, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("keys create", flag.ContinueOnError)
	fs.SetOutput(stdout)
	name := fs.String("name", "", "a name for the key (who or what uses it)")
	mode := fs.String("mode", apikey.ModeLive, "live or test")
	phones := fs.String("phone", "", "comma-separated phone number ids the key may act for, or *")
	scopes := fs.String("scope", apikey.ScopeMessagesSend, "comma-separated scopes")
	requireSig := fs.Bool("require-signature", false, "uploads with this key must carry X-SigFollow-Signature (prints the signing secret once)")
	ratePerMinute := fs.Int("rate-per-minute", 0, "this key's own sustained upload rate (0: the server's RATE_LIMIT_PER_MINUTE)")
	rateBurst := fs.Int("rate-burst", 0, "this key's own burst (0: the server's RATE_LIMIT_BURST)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" || *phones == "" {
		return errors.New("keys create needs -name and -phone\n" + keysUsage)
	}
	plaintext, k, err := apikey.Generate(*name, *mode, splitList(*scopes), splitList(*phones), time.Now())
	if err != nil {
		return err
	}
	if *ratePerMinute < 0 || *ratePerMinute > 60000 || *rateBurst < 0 {
		return errors.New("keys create: -rate-per-minute must be 0 to 60000 and -rate-burst not negative")
	}
	k.RateLimitPerMinute, k.RateLimitBurst = *ratePerMinute, *rateBurst
	if *requireSig {
		if k.SigningSecret, err = apikey.NewSigningSecret(); err != nil {
			return err
		}
		k.RequireSignature = true
	}
	if err := store.Create(ctx, k); err != nil {
		return err
	}
	if k.RequireSignature {
		fmt.Fprintf(stdout, "signing secret:  %s\n\nUploads with this key must be signed with this secret (X-SigFollow-Signature); it is shown only this once.\n\n", k.SigningSecret)
	}
	fmt.Fprintf(stdout, "key id:  %s\nkey:     %s\n\nStore the key now: it is shown only this once (only its hash is kept).\n", k.ID, plaintext)
	fmt.Fprintf(stdout, "\nwebhook secret:  %s\n\nWebhooks for this key are signed with this secret (Standard Webhooks); keep it to verify them.\n", k.WebhookSecret)
	return nil
}

func listKeys(ctx context.Context, store *apikey.Store, stdout io.Writer) error {
	keys, err := store.List(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKEY\tNAME\tSCOPES\tPHONE NUMBER IDS\tCREATED\tSTATUS")
	for _, k := range keys {
		status := "active"
		if k.Revoked() {
			status = "revoked " + k.RevokedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Display(), k.Name,
			strings.Join(k.Scopes, ","), strings.Join(k.PhoneNumberIDs, ","), k.CreatedAt.Format(time.RFC3339), status)
	}
	return tw.Flush()
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
