package embedded

import (
	"context"
	"fmt"
	"log/slog"
)

// LevelTrace is the slog level of nats-server's trace lines (protocol
// traffic). They are only produced when the logger enables this level.
const LevelTrace = slog.LevelDebug - 4

// logBridge implements nats-server's Logger on top of slog. It also hands
// the first fatal error to Start: with a custom logger nats-server does not
// exit on a fatal error, it logs it and stops starting.
type logBridge struct {
	log   *slog.Logger
	fatal chan error // buffered, capacity 1
}

func newLogBridge(log *slog.Logger, serverName string) *logBridge {
	return &logBridge{
		log:   log.With("server", serverName),
		fatal: make(chan error, 1),
	}
}

// levels reports which of nats-server's optional levels the logger enables.
func (b *logBridge) levels(ctx context.Context) (debug, trace bool) {
	return b.log.Enabled(ctx, slog.LevelDebug), b.log.Enabled(ctx, LevelTrace)
}

// Noticef logs at Info.
func (b *logBridge) Noticef(format string, v ...any) { b.emit(slog.LevelInfo, format, v) }

// Warnf logs at Warn.
func (b *logBridge) Warnf(format string, v ...any) { b.emit(slog.LevelWarn, format, v) }

// Errorf logs at Error.
func (b *logBridge) Errorf(format string, v ...any) { b.emit(slog.LevelError, format, v) }

// Debugf logs at Debug.
func (b *logBridge) Debugf(format string, v ...any) { b.emit(slog.LevelDebug, format, v) }

// Tracef logs at LevelTrace.
func (b *logBridge) Tracef(format string, v ...any) { b.emit(LevelTrace, format, v) }

// Fatalf logs at Error with fatal=true and reports the error to Start.
func (b *logBridge) Fatalf(format string, v ...any) {
	line := fmt.Sprintf(format, v...)
	b.log.Log(context.Background(), slog.LevelError, "nats-server", "line", line, "fatal", true)
	select {
	case b.fatal <- fmt.Errorf("%w: %s", ErrServerFailed, line):
	default:
	}
}

func (b *logBridge) emit(level slog.Level, format string, v []any) {
	ctx := context.Background()
	if !b.log.Enabled(ctx, level) {
		return
	}
	b.log.Log(ctx, level, "nats-server", "line", fmt.Sprintf(format, v...))
}
