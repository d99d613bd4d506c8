/*
 * params (tier: base) — lemur's parameter schema and the typed structure every stage reads.
 *
 * The schema (params.c) is the single table of every key: type, default, allowed range and help.
 * It drives validation, `lemur info --schema` and the README's parameter list. Fixed keys are
 * copied into struct params through offsetof descriptors; user-named items (jerald maps, their
 * layer lists) are read by their stage from the config tree (p->cfg).
 */
#ifndef LEMUR_PARAMS_H
#define LEMUR_PARAMS_H

#include <stdbool.h>

#include "config.h"

/** Longest file name lemur builds under output.dir (the file modules refuse longer names). */
#define PARAMS_PATH_MAX 1024

/** A list value (owned by struct params). */
struct real_list {
    int n;
    double *v;
};
struct string_list {
    int n;
    const char **v; /**< point into the config; valid while params lives */
};

struct box_params {
    double size; /**< side [Mpc/h] */
    long n;      /**< Lagrangian cells (particles) per side */
};

struct cosmology_params {
    double Omega_m, Omega_b, h, n_s, sigma8, T_cmb;
    const char *power_table; /**< "" = Eisenstein & Hu */
    const char *power_table_kind;
    long power_table_column;
    bool wiggles;
    bool normalise;
};

struct ic_params {
    long seed;
    const char *amplitude; /**< rayleigh | fixed */
    bool paired;
    long lpt_order;
    double redshift;
    bool write_field;
    bool write_particles;
    const char *input; /**< read this displacement field instead of generating one */
};

struct emulator_params {
    const char *model;
    long tile;
    bool velocities;
    const char *backend;   /**< cpu | gpu | auto */
    const char *precision; /**< fp32 | bf16 | fp16 */
    struct real_list redshifts;
    bool allow_extrapolation;
    long threads;
    bool output_fields;  /**< also write Ψ_NL and v as HDF5 fields */
    double memory_limit; /**< GiB per rank; 0: available memory / ranks per node */
};

struct particles_params {
    bool write_snapshot;
    long n_files;
};

struct power_params {
    const char *input, *reference;
    long n_mesh;
    double dk, kmin, kmax;
    bool compensate, interlace, subtract_shotnoise;
    bool multipoles, momentum;
    const char *los;
};

struct jerald_fit_params {
    long steps, patience;
    const char *loss;
    double smoothing_n, lr_start, lr_end, lr_tau, tolerance;
};

struct jerald_params {
    long n_mesh;
    long gradient_order;
    const char *input;
    struct jerald_fit_params fit;
};

struct fof_params {
    const char *input;     /**< snapshot to search; "" = the run's particles */
    double linking_length; /**< b, in units of the mean interparticle spacing */
    long min_length;
    bool write_members;
    long n_files;
    double dlogm;
    bool spectra;
    long n_slab_cells;
};

struct superres_params {
    const char *model;      /**< network file; "" = the stage is skipped */
    const char *lr_input;   /**< LR evolved density: snapshot, or field file with lr_dataset */
    const char *lr_dataset; /**< "" = lr_input is a snapshot painted with CIC */
    const char *hr_input;   /**< HR linear density field file; "" = the run's or the ic file */
    long tile;              /**< output tile side (multiple of 8); 0 = automatic */
};

struct bias_fit_params {
    const char *catalogue; /**< halo catalogue (fof_tab); "" = output.dir/fof_tab.hdf5 */
    double min_mass;       /**< haloes kept [1e10 Msun/h] */
    long n_mesh;           /**< training mesh; 0: box.n / 2 */
    long epochs;
    double lr, lr_decay;
    long batch_particles; /**< sampled particles per batch (about) */
    double subsample;     /**< fraction of the particles sampled */
    long seed;
    const char *output; /**< model file written; "" = output.dir/bias_model.hdf5 */
    const char *init;   /**< model whose layers start the fit; "" = random */
    bool write_check;   /**< write the first batch's loss and gradient (one rank) */
};

struct bias_params {
    const char *model; /**< model file of lemur bias */
    const char *field; /**< linear field file; "" = the run's field or its ic_field.hdf5 */
    const char *input; /**< final particles; "" = the run's particles or their snapshot */
    struct real_list scales;
    long n_mesh;            /**< halo-field mesh; 0: box.n */
    const char *assignment; /**< ngp | cic */
    bool write_sites;
    struct bias_fit_params fit;
};

struct output_params {
    const char *dir;
    long snapshot_files;
};

struct run_params {
    struct string_list stages;
    bool resume;
    long verbosity;
};

/** Every fixed parameter of a run, typed. */
struct params {
    struct box_params box;
    struct cosmology_params cosmology;
    struct ic_params ic;
    struct emulator_params emulator;
    struct particles_params particles;
    struct power_params power;
    struct jerald_params jerald;
    struct fof_params fof;
    struct superres_params superres;
    struct bias_params bias;
    struct output_params output;
    struct run_params run;
    struct config *cfg; /**< the finalized configuration (dynamic keys, echo) */
    char *effective;    /**< the effective configuration as YAML text */
};

/** The schema table and its length. */
extern const struct config_key params_schema[];
extern const int params_n_schema;

/** Fill p from a finalized configuration (p takes ownership of cfg). Local. */
void params_fill(struct params *p, struct config *cfg);
/** Free what p owns (the config, lists, the effective text). NULL-safe. Local. */
void params_free(struct params *p);

/** Check that an input file's box side file_box equals box.size (relative 1e-6).
 *  @param key   the key that named the file (NULL: the run's own file)
 *  @return false with err naming the key, the file and both sides. Local. */
bool params_check_box(const struct params *p, const char *key, const char *path, double file_box,
                      struct lm_err *err);

#endif
