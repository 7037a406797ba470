package slackstandin

import "regexp"

// emojiByName maps Slack's emoji shortcodes (without colons) to the
// characters a Slack client draws. It holds every shortcode CoffeeBuddy
// sends (emoji_test.go greps the project for them) and the common ones
// people type; an unknown shortcode stays as typed, as in Slack when a
// custom emoji is missing.
var emojiByName = map[string]string{
	// CoffeeBuddy's own.
	"coffee": "☕", "white_check_mark": "✅", "runner": "🏃", "running": "🏃", "alarm_clock": "⏰", "x": "❌",
	"warning": "⚠️", "raising_hand": "🙋", "no_entry": "⛔", "lock": "🔒", "tada": "🎉",
	"hourglass_flowing_sand": "⏳", "hourglass": "⌛",
	// Faces and people.
	"smile": "😄", "smiley": "😃", "grinning": "😀", "blush": "😊", "wink": "😉", "joy": "😂", "rofl": "🤣",
	"slightly_smiling_face": "🙂", "upside_down_face": "🙃", "heart_eyes": "😍", "sunglasses": "😎",
	"thinking_face": "🤔", "neutral_face": "😐", "expressionless": "😑", "unamused": "😒", "sweat_smile": "😅",
	"sweat": "😓", "disappointed": "😞", "worried": "😟", "cry": "😢", "sob": "😭", "scream": "😱",
	"angry": "😠", "rage": "😡", "sleeping": "😴", "sleepy": "😪", "yum": "😋", "stuck_out_tongue": "😛",
	"innocent": "😇", "face_with_rolling_eyes": "🙄", "zany_face": "🤪", "partying_face": "🥳",
	"exploding_head": "🤯", "yawning_face": "🥱", "hugging_face": "🤗", "shushing_face": "🤫",
	"nerd_face": "🤓", "clown_face": "🤡", "skull": "💀", "ghost": "👻", "robot_face": "🤖", "see_no_evil": "🙈",
	"wave": "👋", "+1": "👍", "thumbsup": "👍", "-1": "👎", "thumbsdown": "👎", "ok_hand": "👌", "clap": "👏",
	"raised_hands": "🙌", "pray": "🙏", "muscle": "💪", "point_up": "☝️", "point_right": "👉", "point_left": "👈",
	"point_down": "👇", "eyes": "👀", "man-raising-hand": "🙋‍♂️", "woman-raising-hand": "🙋‍♀️",
	"bow": "🙇", "shrug": "🤷", "facepalm": "🤦", "handshake": "🤝", "crossed_fingers": "🤞", "v": "✌️",
	"writing_hand": "✍️", "brain": "🧠", "busts_in_silhouette": "👥", "bust_in_silhouette": "👤",
	"skin-tone-2": "🏻", "skin-tone-3": "🏼", "skin-tone-4": "🏽", "skin-tone-5": "🏾", "skin-tone-6": "🏿",
	// Hearts and symbols.
	"heart": "❤️", "orange_heart": "🧡", "yellow_heart": "💛", "green_heart": "💚", "blue_heart": "💙",
	"purple_heart": "💜", "black_heart": "🖤", "broken_heart": "💔", "sparkling_heart": "💖", "100": "💯",
	"fire": "🔥", "sparkles": "✨", "star": "⭐", "star2": "🌟", "zap": "⚡", "boom": "💥", "collision": "💥",
	"heavy_check_mark": "✔️", "ballot_box_with_check": "☑️", "heavy_multiplication_x": "✖️",
	"negative_squared_cross_mark": "❎", "exclamation": "❗", "heavy_exclamation_mark": "❗", "question": "❓",
	"grey_question": "❔", "bangbang": "‼️", "interrobang": "⁉️", "no_entry_sign": "🚫", "stop_sign": "🛑",
	"information_source": "ℹ️", "bulb": "💡", "bell": "🔔", "no_bell": "🔕", "mega": "📣", "loudspeaker": "📢",
	"speech_balloon": "💬", "thought_balloon": "💭", "key": "🔑", "unlock": "🔓", "link": "🔗", "pushpin": "📌",
	"round_pushpin": "📍", "paperclip": "📎", "memo": "📝", "pencil": "📝", "pencil2": "✏️", "clipboard": "📋",
	"calendar": "📆", "date": "📅", "spiral_calendar_pad": "🗓️", "chart_with_upwards_trend": "📈",
	"chart_with_downwards_trend": "📉", "bar_chart": "📊", "email": "📧", "envelope": "✉️", "inbox_tray": "📥",
	"outbox_tray": "📤", "package": "📦", "gift": "🎁", "trophy": "🏆", "medal": "🏅", "first_place_medal": "🥇",
	"dart": "🎯", "game_die": "🎲", "rocket": "🚀", "airplane": "✈️", "car": "🚗", "bike": "🚲",
	"walking": "🚶", "house": "🏠", "office": "🏢", "hammer_and_wrench": "🛠️", "wrench": "🔧", "gear": "⚙️",
	"hammer": "🔨", "mag": "🔍", "bug": "🐛", "computer": "💻", "phone": "☎️", "iphone": "📱",
	"white_circle": "⚪", "black_circle": "⚫", "red_circle": "🔴", "large_blue_circle": "🔵",
	"large_green_circle": "🟢", "large_yellow_circle": "🟡", "large_orange_circle": "🟠",
	"arrow_right": "➡️", "arrow_left": "⬅️", "arrow_up": "⬆️", "arrow_down": "⬇️",
	"arrows_counterclockwise": "🔄", "repeat": "🔁", "recycle": "♻️", "new": "🆕", "free": "🆓", "sos": "🆘",
	"ok": "🆗", "cool": "🆒", "up": "🆙", "soon": "🔜", "top": "🔝", "back": "🔙", "end": "🔚",
	"heavy_plus_sign": "➕", "heavy_minus_sign": "➖", "heavy_dollar_sign": "💲", "moneybag": "💰",
	"money_with_wings": "💸", "stopwatch": "⏱️", "timer_clock": "⏲️", "clock1": "🕐", "clock3": "🕒",
	"watch": "⌚", "zzz": "💤", "wastebasket": "🗑️", "construction": "🚧", "rotating_light": "🚨",
	"checkered_flag": "🏁", "triangular_flag_on_post": "🚩", "white_flag": "🏳️",
	// Food and drink, as a coffee bot's users will type them.
	"tea": "🍵", "teapot": "🫖", "cup_with_straw": "🥤", "bubble_tea": "🧋", "milk_glass": "🥛",
	"glass_of_milk": "🥛", "ice_cube": "🧊", "beer": "🍺", "beers": "🍻", "wine_glass": "🍷", "cocktail": "🍸",
	"champagne": "🍾", "clinking_glasses": "🥂", "doughnut": "🍩", "cookie": "🍪", "croissant": "🥐",
	"bagel": "🥯", "bread": "🍞", "cake": "🍰", "birthday": "🎂", "cupcake": "🧁", "chocolate_bar": "🍫",
	"candy": "🍬", "lollipop": "🍭", "honey_pot": "🍯", "pancakes": "🥞", "waffle": "🧇", "sandwich": "🥪",
	"pizza": "🍕", "hamburger": "🍔", "fries": "🍟", "taco": "🌮", "burrito": "🌯", "sushi": "🍣",
	"ramen": "🍜", "spaghetti": "🍝", "apple": "🍎", "green_apple": "🍏", "banana": "🍌", "strawberry": "🍓",
	"lemon": "🍋", "avocado": "🥑", "coconut": "🥥", "chestnut": "🌰", "peanuts": "🥜", "salt": "🧂",
	"knife_fork_plate": "🍽️", "fork_and_knife": "🍴", "spoon": "🥄",
	// Nature and weather.
	"sunny": "☀️", "cloud": "☁️", "rain_cloud": "🌧️", "umbrella": "☔", "snowflake": "❄️", "snowman": "⛄",
	"rainbow": "🌈", "sun_with_face": "🌞", "new_moon": "🌑", "full_moon": "🌕", "crescent_moon": "🌙",
	"earth_africa": "🌍", "earth_americas": "🌎", "earth_asia": "🌏", "seedling": "🌱", "herb": "🌿",
	"four_leaf_clover": "🍀", "evergreen_tree": "🌲", "deciduous_tree": "🌳", "palm_tree": "🌴",
	"cactus": "🌵", "tulip": "🌷", "rose": "🌹", "sunflower": "🌻", "cherry_blossom": "🌸", "bouquet": "💐",
	"dog": "🐶", "cat": "🐱", "mouse": "🐭", "rabbit": "🐰", "fox_face": "🦊", "bear": "🐻", "panda_face": "🐼",
	"koala": "🐨", "tiger": "🐯", "lion_face": "🦁", "cow": "🐮", "pig": "🐷", "frog": "🐸", "monkey_face": "🐵",
	"chicken": "🐔", "penguin": "🐧", "bird": "🐦", "owl": "🦉", "unicorn_face": "🦄", "bee": "🐝",
	"turtle": "🐢", "snail": "🐌", "octopus": "🐙", "fish": "🐟", "whale": "🐳", "dolphin": "🐬",
	"party_popper": "🎉", "balloon": "🎈", "confetti_ball": "🎊", "christmas_tree": "🎄", "jack_o_lantern": "🎃",
	"musical_note": "🎵", "notes": "🎶", "headphones": "🎧", "camera": "📷", "movie_camera": "🎥", "tv": "📺",
	"books": "📚", "book": "📖", "mortar_board": "🎓", "briefcase": "💼", "school_satchel": "🎒",
}

// emojiShortcode matches a shortcode: Slack's names are lower-case letters,
// digits and _ + - (skin tones follow as ::skin-tone-N:).
var emojiShortcode = regexp.MustCompile(`:([a-z0-9_+\-]+):`)

// emojiChar returns the character for a shortcode name (no colons).
func emojiChar(name string) (string, bool) {
	e, ok := emojiByName[name]
	return e, ok
}

// replaceEmoji turns the known shortcodes in plain text into emoji.
func replaceEmoji(s string) string {
	return emojiShortcode.ReplaceAllStringFunc(s, func(m string) string {
		if e, ok := emojiChar(m[1 : len(m)-1]); ok {
			return e
		}
		return m
	})
}
