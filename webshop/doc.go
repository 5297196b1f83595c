// Package webshop serves the simulator's pages as a real website: a goal page
// with the instruction and a search box, results pages, item pages with
// option buttons, description/features/reviews sub-pages and a purchase page
// that shows the reward. Every click maps to the env action it stands for
// (search[...] or click[...]) on a per-browser-session env.Env, and every
// finished episode is written as a "human" trajectory file (datasets
// schema) under the record directory. A replay view steps through the
// episodes of any trajectory file (human, expert, rollout) under the replay
// directory.
//
// Pages are plain server-rendered HTML (html/template, embedded); forms post
// actions and the server answers with a redirect to the session's current
// page (post/redirect/get), so reloading never repeats an action.
package webshop
