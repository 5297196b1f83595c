// Package shopgen generates the built-in shop: WebShop's 12,087 real human
// instructions as goals, in WebShop's goal order and splits, with a catalogue
// built backwards from each instruction.
//
// Parse reads an instruction into what it asks for (product type, WebShop's
// mined attribute phrases, option values). For each goal, Generate then
// builds a target product that satisfies the goal the way a real WebShop
// product satisfies its instruction (a long keyword-stuffed title with the
// brand first, a breadcrumb, bullet points and a description that carry some
// attributes only in text, the wanted option among several, a price under the
// instruction's cap), near-duplicate siblings that each miss one requirement,
// distractors of another kind that share the product noun, and fillers from
// the same sub-category. It writes WebShop's three data files and goals.json
// (the goals with WebShop's goal fields, so the reward is computed exactly as
// WebShop's). The knobs in Config are calibrated so that WebShop's rule
// baseline scores on this shop what it scores on WebShop (docs/ENV.md).
//
// The curated data in data/ and the real WebShop files of env/webshopdata are
// embedded in the binary.
package shopgen
