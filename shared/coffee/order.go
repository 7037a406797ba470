package coffee

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Menu. Values are stored lower-case; Label gives the display form.
var (
	Drinks = []string{"latte", "espresso", "cappuccino", "americano", "mocha"}
	Sizes  = []string{"small", "medium", "large"}
)

// MaxCustomization is the longest customization accepted, in characters.
const MaxCustomization = 200

// Order is one user's order in one run (one per user per run).
type Order struct {
	ID             uuid.UUID
	RunID          uuid.UUID
	UserID         string
	DisplayName    string // from users, for messages
	Drink          string
	Size           string
	Customizations string // untrusted: stored verbatim, rendered escaped
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// More domain errors, compared with errors.Is.
var (
	ErrRunClosed        = errors.New("coffee: the run is no longer taking orders")
	ErrNotRunner        = errors.New("coffee: only the runner can do that")
	ErrNotAllowed       = errors.New("coffee: only the run's initiator or runner can do that")
	ErrAlreadyCompleted = errors.New("coffee: the run is already completed")
	ErrNotActive        = errors.New("coffee: the run is not active")
	ErrInvalidOrder     = errors.New("coffee: invalid order")
)

// NormalizeCustomizations stores customizations verbatim, except that text
// of nothing but white space means none: it would show as "( )".
func NormalizeCustomizations(s string) string {
	if strings.TrimSpace(s) == "" {
		return ""
	}
	return s
}

// ValidateOrder checks drink, size and customizations; the error says which
// field is wrong, in words for the user.
func ValidateOrder(drink, size, customizations string) error {
	if !slices.Contains(Drinks, drink) {
		return fmt.Errorf("%w: please choose a drink from the list", ErrInvalidOrder)
	}
	if !slices.Contains(Sizes, size) {
		return fmt.Errorf("%w: please choose a size from the list", ErrInvalidOrder)
	}
	if n := len([]rune(customizations)); n > MaxCustomization {
		return fmt.Errorf("%w: customizations can be at most %d characters (this is %d)", ErrInvalidOrder, MaxCustomization, n)
	}
	return nil
}

// Total is how many of one drink+size a run needs.
type Total struct {
	Drink, Size string
	Count       int
}

// Totals counts orders per drink and size, in menu order.
func Totals(orders []Order) []Total {
	var out []Total
	for _, d := range Drinks {
		for _, s := range Sizes {
			n := 0
			for _, o := range orders {
				if o.Drink == d && o.Size == s {
					n++
				}
			}
			if n > 0 {
				out = append(out, Total{Drink: d, Size: s, Count: n})
			}
		}
	}
	return out
}
