// Package datasets reads and writes shopping trajectories as Parquet files and
// produces them: it converts simulator episodes to rows, imports WebShop's
// human demonstrations, generates expert demonstrations on a shop and
// summarises any trajectory file.
//
// A trajectory file has one row per step (see Step for the schema) and is
// compressed with zstd. Rows of one episode are consecutive, in step order,
// so readers can stream a file episode by episode (ReadEpisodes). Files are
// written to a temporary name and renamed on Close, so a crashed writer never
// leaves a partial file at the final path.
//
// The package imports env (the simulator) and nothing else of ours.
package datasets
