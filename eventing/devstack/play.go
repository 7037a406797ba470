package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
)

// Player acts as Slack users against a stack's local Slack stand-in: it
// types commands and clicks buttons exactly as Slack would send them
// (signed, through slack-ingress). `make demo` and the journey tests use it.
type Player struct {
	Slack   *slackstandin.Server
	Team    string
	Channel string
	// Wait bounds every wait for the bot's reaction.
	Wait time.Duration
}

// NewPlayer plays in channel of the stack's stand-in.
func NewPlayer(s *Stack, channel string) *Player {
	return &Player{Slack: s.Slack, Team: slackstandin.DefaultTeamID, Channel: channel, Wait: 30 * time.Second}
}

// User is a simulated Slack user.
type User struct{ ID, Name string }

// Command types a slash command and returns the ingress's answer body.
func (p *Player) Command(ctx context.Context, u User, command, text string) (string, error) {
	res, err := p.Slack.RunCommand(ctx, slackstandin.Command{
		Command: command, Text: text, UserID: u.ID, UserName: u.Name, ChannelID: p.Channel, TeamID: p.Team,
	})
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", u.Name, command, err)
	}
	if res.Status != 200 {
		return "", fmt.Errorf("%s %s: ingress answered %d %s", u.Name, command, res.Status, res.Body)
	}
	return string(res.Body), nil
}

// RunMessage waits for the bot's current run message in the channel (the
// newest top-level message with run buttons) and returns it with its run id.
func (p *Player) RunMessage(ctx context.Context) (slackstandin.Message, string, error) {
	var msg slackstandin.Message
	var runID string
	err := p.until(ctx, "a run message with buttons", func() bool {
		msgs := p.Slack.Messages(p.Channel)
		for i := len(msgs) - 1; i >= 0; i-- {
			if msgs[i].ThreadTS == "" {
				if id := ButtonValue(msgs[i].Blocks, blocks.ActionAddOrder); id != "" {
					msg, runID = msgs[i], id
					return true
				}
			}
		}
		return false
	})
	return msg, runID, err
}

// Click presses the button actionID on msg (in the channel, or in a DM).
func (p *Player) Click(ctx context.Context, u User, msg slackstandin.Message, actionID string) error {
	value := ButtonValue(msg.Blocks, actionID)
	if value == "" {
		return fmt.Errorf("message %s has no %s button", msg.TS, actionID)
	}
	payload, _ := json.Marshal(map[string]any{
		"type":      "block_actions",
		"user":      map[string]string{"id": u.ID, "name": u.Name},
		"team":      map[string]string{"id": p.Team},
		"container": map[string]string{"type": "message", "message_ts": msg.TS, "channel_id": msg.Channel},
		"channel":   map[string]string{"id": msg.Channel},
		"actions": []map[string]string{{
			"type": "button", "action_id": actionID, "block_id": blockOf(msg.Blocks, actionID), "value": value,
		}},
	})
	res, err := p.Slack.SendInteraction(ctx, payload)
	if err != nil {
		return fmt.Errorf("%s clicks %s: %w", u.Name, actionID, err)
	}
	if res.Status != 200 {
		return fmt.Errorf("%s clicks %s: ingress answered %d %s", u.Name, actionID, res.Status, res.Body)
	}
	return nil
}

// Order opens the order form from the run message (Add my order) and
// submits drink, size and customizations. It returns the ingress's answer to
// the submission: empty when accepted, field errors otherwise.
func (p *Player) Order(ctx context.Context, u User, drink, size, custom string) (string, error) {
	msg, _, err := p.RunMessage(ctx)
	if err != nil {
		return "", err
	}
	before := len(p.Slack.Views(u.ID))
	if err := p.Click(ctx, u, msg, blocks.ActionAddOrder); err != nil {
		return "", err
	}
	if err := p.until(ctx, u.Name+"'s order form", func() bool { return len(p.Slack.Views(u.ID)) > before }); err != nil {
		return "", err
	}
	return p.Submit(ctx, u, drink, size, custom)
}

// Submit submits the user's open order form.
func (p *Player) Submit(ctx context.Context, u User, drink, size, custom string) (string, error) {
	payload, _ := json.Marshal(map[string]any{
		"type": "view_submission",
		"user": map[string]string{"id": u.ID, "name": u.Name},
		"team": map[string]string{"id": p.Team},
		"view": map[string]any{"state": map[string]any{"values": map[string]any{
			blocks.BlockDrink:     map[string]any{blocks.BlockDrink: map[string]any{"type": "static_select", "selected_option": map[string]any{"value": drink}}},
			blocks.BlockSize:      map[string]any{blocks.BlockSize: map[string]any{"type": "static_select", "selected_option": map[string]any{"value": size}}},
			blocks.BlockCustomize: map[string]any{blocks.BlockCustomize: map[string]any{"type": "plain_text_input", "value": custom}},
		}}},
	})
	res, err := p.Slack.SendInteraction(ctx, payload)
	if err != nil {
		return "", fmt.Errorf("%s submits an order: %w", u.Name, err)
	}
	if res.Status != 200 {
		return "", fmt.Errorf("%s submits an order: ingress answered %d %s", u.Name, res.Status, res.Body)
	}
	return string(res.Body), nil
}

// WaitThread waits for a reply in the run's thread containing text.
func (p *Player) WaitThread(ctx context.Context, runTS, text string) (slackstandin.Message, error) {
	var found slackstandin.Message
	err := p.until(ctx, fmt.Sprintf("a thread reply containing %q", text), func() bool {
		for _, m := range p.Slack.Thread(p.Channel, runTS) {
			if m.ThreadTS != "" && strings.Contains(m.Text+string(m.Blocks), text) {
				found = m
				return true
			}
		}
		return false
	})
	return found, err
}

// WaitDM waits for a DM to u whose text or blocks contain text.
func (p *Player) WaitDM(ctx context.Context, u User, text string) (slackstandin.Message, error) {
	var found slackstandin.Message
	err := p.until(ctx, fmt.Sprintf("a DM to %s containing %q", u.Name, text), func() bool {
		for _, m := range p.Slack.Messages(p.Slack.DMChannel(u.ID)) {
			if strings.Contains(m.Text+string(m.Blocks), text) {
				found = m
				return true
			}
		}
		return false
	})
	return found, err
}

// WaitEphemeral waits for an ephemeral to u containing text.
func (p *Player) WaitEphemeral(ctx context.Context, u User, text string) (slackstandin.Message, error) {
	var found slackstandin.Message
	err := p.until(ctx, fmt.Sprintf("an ephemeral to %s containing %q", u.Name, text), func() bool {
		for _, m := range p.Slack.Ephemerals(u.ID) {
			if strings.Contains(m.Text+string(m.Blocks), text) {
				found = m
				return true
			}
		}
		return false
	})
	return found, err
}

// WaitRunMessage waits until the run message's text or blocks contain text.
func (p *Player) WaitRunMessage(ctx context.Context, text string) (slackstandin.Message, error) {
	var found slackstandin.Message
	err := p.until(ctx, fmt.Sprintf("the run message to show %q", text), func() bool {
		for _, m := range p.Slack.Messages(p.Channel) {
			if m.ThreadTS == "" && strings.Contains(m.Text+string(m.Blocks), text) {
				found = m
				return true
			}
		}
		return false
	})
	return found, err
}

// until polls cond every 25 ms until it holds or p.Wait passes. The stack
// is asynchronous by design (Kafka in between), so a condition with a
// deadline is the honest way to wait.
func (p *Player) until(ctx context.Context, what string, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, p.Wait)
	defer cancel()
	t := time.NewTicker(25 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waited %s for %s", p.Wait, what)
		case <-t.C:
		}
	}
	return nil
}

// ButtonValue finds the value of the button actionID in Block Kit JSON (""
// when there is none).
func ButtonValue(raw json.RawMessage, actionID string) string {
	v, _ := findButton(raw, actionID)
	return v
}

func blockOf(raw json.RawMessage, actionID string) string {
	_, b := findButton(raw, actionID)
	return b
}

func findButton(raw json.RawMessage, actionID string) (value, blockID string) {
	var bl []struct {
		BlockID  string `json:"block_id"`
		Elements []struct {
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		} `json:"elements"`
	}
	if json.Unmarshal(raw, &bl) != nil {
		return "", ""
	}
	for _, b := range bl {
		for _, e := range b.Elements {
			if e.ActionID == actionID {
				return e.Value, b.BlockID
			}
		}
	}
	return "", ""
}
