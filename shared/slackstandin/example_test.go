package slackstandin_test

import (
	"context"
	"fmt"
	"os"

	"github.com/slack-go/slack"

	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
)

func Example() {
	srv := slackstandin.New(slackstandin.Options{
		Users:      map[string]string{"U1": "alice"},
		Transcript: os.Stdout, // make run passes its terminal here
	})
	if err := srv.Start("127.0.0.1:0"); err != nil {
		panic(err)
	}
	defer srv.Close()

	// The code under test talks to it with an ordinary Slack client.
	api := slack.New(slackstandin.DefaultBotToken, slack.OptionAPIURL(srv.APIURL()))
	_, ts, err := api.PostMessage("C0LOCAL", slack.MsgOptionText("☕ Coffee run started by <@U1>", false))
	if err != nil {
		panic(err)
	}
	_, _, _ = api.PostMessage("C0LOCAL", slack.MsgOptionText("Runner: <@U1>", false), slack.MsgOptionTS(ts))

	// Tests then assert on the recorded calls and the resulting state.
	calls, _ := srv.WaitForCalls(context.Background(), "chat.postMessage", 2)
	fmt.Println(len(calls), "calls;", len(srv.Thread("C0LOCAL", ts)), "reply")
	// Output:
	// [#C0LOCAL] coffeebuddy: ☕ Coffee run started by @alice
	// [#C0LOCAL]   ↳ (thread) coffeebuddy: Runner: @alice
	// 2 calls; 1 reply
}
