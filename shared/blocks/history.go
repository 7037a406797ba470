package blocks

import (
	"fmt"
	"strings"

	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
)

// HistoryPageSize is how many runs /coffee-history shows per page.
const HistoryPageSize = 10

// History is the /coffee-history answer: one line per run, newest first,
// with a hint for the next page.
func History(entries []store.HistoryEntry, page, total int) Ephemeral {
	if total == 0 {
		return EphemeralText("No coffee runs yet!")
	}
	pages := (total + HistoryPageSize - 1) / HistoryPageSize
	if len(entries) == 0 {
		return EphemeralText(fmt.Sprintf("There is no page %d: this channel has %s of coffee runs.", page, plural(pages, "page")))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*Coffee runs in this channel* (page %d of %d, %s)", page, pages, plural(total, "run"))
	for _, e := range entries {
		runner := "nobody"
		if e.RunnerID != "" {
			runner = Escape(e.RunnerName)
		}
		fmt.Fprintf(&b, "\n• %s: %s, %s, %s", Date(e.CreatedAt, "{date_short} {time}"), runner,
			plural(e.Orders, "order"), statusWord(e.Status))
	}
	if page < pages {
		fmt.Fprintf(&b, "\n_More: `/coffee-history --page %d`_", page+1)
	}
	return EphemeralText(b.String())
}

func statusWord(s coffee.Status) string {
	switch s {
	case coffee.StatusActive:
		return "taking orders"
	case coffee.StatusClosed:
		return "on its way"
	}
	return string(s)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
