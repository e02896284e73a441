package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/celpolicy/celpolicy/actions"
	"github.com/celpolicy/celpolicy/engine"
	"github.com/celpolicy/celpolicy/internal/config"
	"github.com/celpolicy/celpolicy/internal/service"
	"github.com/celpolicy/celpolicy/registry"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func newServeCmd() *cobra.Command {
	var configFile string
	cmd := &cobra.Command{
		Use:   "serve [--config celpolicy.yaml]",
		Short: "Run the service: hot-reloaded policies, scheduled passes, metrics, audit log",
		Long: `serve loads the policies and keeps them in step with the files (a change is in
force within 2 seconds; a change that does not load leaves the previous set in
force and is logged with its positions), runs every policy that has a schedule
on it (a replication pass over its sources, as 'celpolicy run --policy' does),
and serves /metrics, /healthz and /readyz.

Settings come from defaults, then the --config file, then CELPOLICY_*
environment variables, then flags: each overrides the one before. Every
setting's flag is listed below; its environment variable is CELPOLICY_ and the
flag's name in capitals with _ for - (--log-level: CELPOLICY_LOG_LEVEL).

Logs and audit records (one per decision, action and policy-set change, with
"stream":"audit") go to standard error. SIGINT or SIGTERM shuts down: no new
requests or passes, then a wait of up to shutdown.timeout for running ones.

Exit code 0 after a clean shutdown, 1 when the configuration or the policies
are invalid or the server fails.`,
		Example: `  celpolicy serve --config examples/celpolicy.yaml
  CELPOLICY_POLICIES=/etc/celpolicy/policies celpolicy serve --listen 127.0.0.1:9090 --log-format text`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			flags := map[string]string{}
			cmd.Flags().Visit(func(f *pflag.Flag) {
				if f.Name != "config" {
					flags[f.Name] = f.Value.String()
				}
			})
			cfg, err := config.Load(config.Sources{File: configFile, Env: os.LookupEnv, Flags: flags})
			if err != nil {
				return &exitError{code: exitFailure, err: err}
			}
			if err := runServe(cmd.Context(), cfg, cmd.ErrOrStderr(), nil); err != nil {
				return &exitError{code: exitFailure, err: err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "", "configuration file (celpolicy.yaml)")
	for _, s := range config.Settings() {
		help := fmt.Sprintf("%s (%s, file key %s)", s.Help, s.Env, s.Key)
		cmd.Flags().String(s.Flag, s.Default, help)
	}
	return cmd
}

// runServe runs the service with cfg until ctx ends. ln, when not nil,
// replaces listening on cfg.Listen (tests pass a loopback listener).
func runServe(ctx context.Context, cfg *config.Config, logOut io.Writer, ln net.Listener) error {
	logger := newLogger(cfg, logOut)
	secret, err := webhookSecret(cfg)
	if err != nil {
		return err
	}
	pass := service.NewPass(service.PassConfig{
		Concurrency: cfg.Concurrency,
		Logger:      logger,
		Registry: []registry.Option{registry.WithVersion(version), registry.WithCacheSize(cfg.CacheImages),
			registry.WithTagTTL(cfg.TagTTL)},
		Actions: append([]actions.Option{actions.WithVersion(version)}, secret...),
	})
	svc, err := service.New(cfg, logger, pass, engine.WithMemo(cfg.CacheImages))
	if err != nil {
		return err
	}
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
	}
	return svc.Serve(ctx, ln)
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// webhookSecret reads the HMAC secret for notifications from the file
// the configuration names; the secret itself never is a setting.
func webhookSecret(cfg *config.Config) ([]actions.Option, error) {
	if cfg.NotifySecretFile == "" {
		return nil, nil
	}
	data, err := os.ReadFile(cfg.NotifySecretFile)
	if err != nil {
		return nil, fmt.Errorf("notify secret: %w", err)
	}
	secret := []byte(strings.TrimSpace(string(data)))
	if len(secret) == 0 {
		return nil, fmt.Errorf("notify secret: %s is empty", cfg.NotifySecretFile)
	}
	return []actions.Option{actions.WithWebhookSecret(func(string) []byte { return secret })}, nil
}
