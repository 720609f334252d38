package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// newLogger builds the process logger: text or JSON lines on w at level.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log format %q: want text or json", format)
	}
}

// minLevel passes on only records at or above min: it quiets a chatty
// component (nats-server's start-up banner) without changing the rest.
type minLevel struct {
	slog.Handler
	min slog.Level
}

// Enabled reports whether level reaches both the floor and the wrapped handler.
func (h minLevel) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= h.min && h.Handler.Enabled(ctx, level)
}

// WithAttrs keeps the floor on derived handlers.
func (h minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(attrs), h.min}
}

// WithGroup keeps the floor on derived handlers.
func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}

// natsServerLogger is the embedded server's logger: warnings and errors
// only, unless the process logs at debug level.
func natsServerLogger(ctx context.Context, logger *slog.Logger) *slog.Logger {
	logger = logger.With("component", "nats-server")
	if logger.Enabled(ctx, slog.LevelDebug) {
		return logger
	}
	return slog.New(minLevel{logger.Handler(), slog.LevelWarn})
}
