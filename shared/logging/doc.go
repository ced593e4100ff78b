// Package logging builds the structured logger (log/slog) every binary of
// the pipeline writes with, from its LOG_LEVEL and LOG_FORMAT settings.
package logging
