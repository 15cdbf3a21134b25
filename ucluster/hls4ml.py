"""Names of the hls4ml LHC jet HDF5 layout, shared by the simulator (writer) and the converter (reader).

Columns are always resolved by name: real hls4ml files come in several versions whose column order differs.
"""

CONSTITUENTS = "jetConstituentList"
PARTICLE_NAMES = "particleFeatureNames"
JETS = "jets"
JET_NAMES = "jetFeatureNames"

# The 16 per-particle features of the public 30/50/100/150-particle files, in file order.
PARTICLE_FEATURES = (
    "j1_px", "j1_py", "j1_pz", "j1_e", "j1_erel", "j1_pt", "j1_ptrel", "j1_eta", "j1_etarel",
    "j1_etarot", "j1_phi", "j1_phirel", "j1_phirot", "j1_deltaR", "j1_costheta", "j1_costhetarel",
)
OPTIONAL_PARTICLE_FEATURES = ("j1_pdgid", "j1_e1mcosthetarel")

# Truth classes in the order of their one-hot columns; index = label stored in Parquet.
CLASS_NAMES = ("g", "q", "w", "z", "t")
CLASS_COLUMNS = tuple(f"j_{c}" for c in CLASS_NAMES)
UNDEFINED_COLUMN = "j_undef"

# Jet-level columns the converter needs besides the labels.
JET_PT, JET_ETA, JET_MASS = "j_pt", "j_eta", "j_mass"
