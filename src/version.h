/* version (tier: base) — lemur's version string, recorded in every output file. */
#ifndef LEMUR_VERSION_H
#define LEMUR_VERSION_H
#define LEMUR_VERSION "0.1.0"
#endif
