/*
 * timer (tier: base) — named phase timers. A phase is started and stopped by name ("ic.noise",
 * "power.fft"); calls may repeat and accumulate. The driver prints the table at the end (the MPI
 * layer adds the max over ranks and the imbalance, see comm_timer_report in src/mpi/comm.h). Local,
 * not thread-safe: time phases outside OpenMP regions.
 */
#ifndef LEMUR_TIMER_H
#define LEMUR_TIMER_H

#include <stdio.h>

/** Wall-clock seconds since an arbitrary fixed origin. */
double timer_now(void);
/** Start accumulating time under name (name must outlive the program: use a literal). */
void timer_start(const char *name);
/** Stop the phase started under name; returns the seconds of this interval. */
double timer_stop(const char *name);
/** Seconds accumulated under name (0 when unknown). */
double timer_total(const char *name);
/** Number of phases and their names in first-start order. */
int timer_n_phases(void);
const char *timer_name(int i);
/** Add bytes sent by this process under a communication label ("exchange.halo", ...). */
void timer_add_bytes(const char *name, double bytes);
/** Number of byte counters and their names/totals in first-use order. */
int timer_n_counters(void);
const char *timer_counter_name(int i);
double timer_counter_bytes(int i);
/** Forget every phase. */
void timer_reset(void);

#endif
