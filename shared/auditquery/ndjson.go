package auditquery

import (
	"bufio"
	"io"
	"net/http"
)

// flushEvery rows, an export hands what it has to the client: often enough
// that a slow export shows progress, rarely enough that a flush (a chunk on
// the wire) carries about 200 KiB.
const flushEvery = 1000

// NDJSON writes rows as newline-delimited JSON, a line each (Row.AppendJSON)
// into a 64 KiB buffer handed to the client every 1,000 rows, flushing w
// too when it is an http.Flusher. Its Write fits Stream's emit. It lives
// here rather than in audit-api so the scale benchmark measures the very
// writer the handler uses.
type NDJSON struct {
	bw       *bufio.Writer
	flusher  http.Flusher
	line     []byte
	buffered int64
	sent     int64
}

// NewNDJSON writes to w.
func NewNDJSON(w io.Writer) *NDJSON {
	o := &NDJSON{bw: bufio.NewWriterSize(w, 64<<10)}
	o.flusher, _ = w.(http.Flusher)
	return o
}

// Write encodes r as one line.
func (o *NDJSON) Write(r *Row) error {
	o.line = append(r.AppendJSON(o.line[:0]), '\n')
	if _, err := o.bw.Write(o.line); err != nil {
		return err
	}
	if o.buffered++; o.buffered >= flushEvery {
		return o.Flush()
	}
	return nil
}

// Flush hands the buffered lines to the client.
func (o *NDJSON) Flush() error {
	if err := o.bw.Flush(); err != nil {
		return err
	}
	if o.flusher != nil {
		o.flusher.Flush()
	}
	o.sent += o.buffered
	o.buffered = 0
	return nil
}

// Sent counts the rows written through to w (flushed), which is what an
// access record reports: rows still buffered when a client went away never
// left.
func (o *NDJSON) Sent() int64 { return o.sent }
