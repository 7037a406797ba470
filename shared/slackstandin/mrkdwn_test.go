package slackstandin

import (
	"strings"
	"testing"
)

var testNames = names{
	user: func(id string) string {
		if n, ok := map[string]string{"U0ALICE": "alice", "U0BOB": "bob", "U0EVIL": `<img src=x onerror=alert(1)>`}[id]; ok {
			return n
		}
		return id
	},
	channel: func(id string) string {
		if id == "C0LOCAL" {
			return "coffee"
		}
		return strings.ToLower(id)
	},
	viewer: "U0BOB",
}

func TestRenderMrkdwn(t *testing.T) {
	const emoji = `<span class="emoji" role="img" aria-label="%s" title=":%s:">%s</span>`
	em := func(name, char string) string {
		return strings.NewReplacer("%s", name).Replace(emoji[:strings.Index(emoji, ">%s")+1]) + char + "</span>"
	}
	tests := []struct {
		name, in, want string
	}{
		{"plain", "hello", "hello"},
		{"bold italic strike", "*bold* _it_ ~gone~", "<b>bold</b> <i>it</i> <s>gone</s>"},
		{"nested", "*bold _and it_*", "<b>bold <i>and it</i></b>"},
		{"not mid-word", "snake_case_name and 2*3*4", "snake_case_name and 2*3*4"},
		{"no space after opener", "* not bold*", "* not bold*"},
		{"code keeps markup literal", "`*x* <@U0ALICE>` *y*", `<code class="md-code">*x* @alice</code> <b>y</b>`},
		{"emphasis around code", "_More: `/coffee-history --page 2`_", `<i>More: <code class="md-code">/coffee-history --page 2</code></i>`},
		{"pre", "```line 1\n*x*```after", `<pre class="md-pre">line 1` + "\n" + `*x*</pre>after`},
		{"quote", "> quoted\nnext", `<blockquote class="md-quote">quoted</blockquote>next`},
		{"line breaks", "a\nb", "a<br>b"},
		{"user mention with name", "<@U0ALICE> started", `<span class="mention" data-user="U0ALICE">@alice</span> started`},
		{"viewer's own mention", "thanks <@U0BOB>!", `thanks <span class="mention me" data-user="U0BOB">@bob</span>!`},
		{"unknown user uses label", "<@U9|zed>", `<span class="mention" data-user="U9">@zed</span>`},
		{"mention in bold", "*<@U0ALICE> is going*", `<b><span class="mention" data-user="U0ALICE">@alice</span> is going</b>`},
		{"channel", "run in <#C0LOCAL>", `run in <span class="mention channel">#coffee</span>`},
		{"channel label", "<#C9|tea>", `<span class="mention channel">#tea</span>`},
		{"real broadcast", "<!here> coffee", `<span class="mention broadcast">@here</span> coffee`},
		{"escaped broadcast is text", "&lt;!channel&gt; *bold* &amp; &lt;@U0ALICE&gt;", `&lt;!channel&gt; <b>bold</b> &amp; &lt;@U0ALICE&gt;`},
		{"date", "Last call <!date^1795256100^{time}|10:15 UTC>.",
			`Last call <time class="slack-date" datetime="2026-11-21T10:15:00Z" data-unix="1795256100" data-format="{time}">10:15 UTC</time>.`},
		{"date with link", "<!date^1795256100^{date_short} {time}^https://x.test|then>",
			`<time class="slack-date" datetime="2026-11-21T10:15:00Z" data-unix="1795256100" data-format="{date_short} {time}">then</time>`},
		{"link", "<https://example.com/a?b=1&amp;c=2|the docs>", `<a href="https://example.com/a?b=1&amp;c=2" target="_blank" rel="noopener noreferrer">the docs</a>`},
		{"bare link", "<https://example.com>", `<a href="https://example.com" target="_blank" rel="noopener noreferrer">https://example.com</a>`},
		{"mailto", "<mailto:a@b.test|mail>", `<a href="mailto:a@b.test" target="_blank" rel="noopener noreferrer">mail</a>`},
		{"javascript link is text", "<javascript:alert(1)|click>", "&lt;javascript:alert(1)|click&gt;"},
		{"data link is text", "<data:text/html,<script>|x>", "&lt;data:text/html,&lt;script&gt;|x&gt;"},
		{"emoji", ":coffee: :white_check_mark: :tada:", em("coffee", "☕") + " " + em("white_check_mark", "✅") + " " + em("tada", "🎉")},
		{"unknown emoji stays", ":no_such_emoji: 10:15:30", ":no_such_emoji: 10:15:30"},
		{"emoji in bold", "*:runner: go*", "<b>" + em("runner", "🏃") + " go</b>"},
		{"raw html escaped", `<b>x</b> "quoted" 'single'`, `&lt;b&gt;x&lt;/b&gt; &#34;quoted&#34; &#39;single&#39;`},
		{"script via entities stays text", "&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;script&gt;alert(1)&lt;/script&gt;"},
		{"forged placeholder", "\uE000 <@U0ALICE>", "\uFFFD " + `<span class="mention" data-user="U0ALICE">@alice</span>`},
		{"hostile display name", "<@U0EVIL>", `<span class="mention" data-user="U0EVIL">@&lt;img src=x onerror=alert(1)&gt;</span>`},
		{"subteam", "<!subteam^S1|@baristas>", `<span class="mention">@baristas</span>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(renderMrkdwn(tt.in, testNames)); got != tt.want {
				t.Errorf("renderMrkdwn(%q)\n got %s\nwant %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestRenderPlain(t *testing.T) {
	if got := string(renderPlain("<b>Add</b> :coffee:", true)); !strings.HasPrefix(got, "&lt;b&gt;Add&lt;/b&gt; <span class=\"emoji\"") {
		t.Errorf("renderPlain with emoji = %s", got)
	}
	if got := string(renderPlain(":coffee: &amp;", false)); got != ":coffee: &amp;amp;" {
		t.Errorf("renderPlain without emoji = %s", got)
	}
}
