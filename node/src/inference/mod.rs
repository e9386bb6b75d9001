//! ONNX inference with tract, made deterministic by canonicalising the output.
//!
//! A job is a model file (identified by `modelId = keccak256(file)`) and an ATI1 input
//! ([`attesta_sdk::input`]). [`Model::load`] parses and plans the model once; [`Model::run`]
//! checks the input against the model's declared inputs, runs it, and returns the outputs as f32;
//! [`Model::run_canonical`] turns them into the ATO1 bytes `resultHash` hashes
//! ([`attesta_sdk::canonical`], [`DEFAULT_DECIMALS`] decimals).
//!
//! # Determinism
//!
//! tract is deterministic for a given plan on a given CPU: one thread by default (this module
//! never changes tract's global executor; a plan may be given its own executor through
//! [`LoadOptions::executor`]), no randomness once `Onnx::determinize` has fixed the seeds of random
//! ops. What differs between honest nodes is the kernel set (tract picks SIMD kernels by CPU
//! feature) and the optimisation level, which reorder float sums and change the last bits. The
//! canonical rounding to 4 decimals absorbs those differences; `tests/inference.rs` checks that
//! optimised and plain plans, native and generic kernels, and one or several threads give the
//! same canonical bytes.
//!
//! # Inside the sandbox
//!
//! [`run_canonical`] runs in the sandboxed worker: it reads the model file at the given path and
//! nothing else (models that reference external data files are refused), opens no sockets and
//! starts no threads. tract reads `TRACT_*` environment variables as tuning knobs (kernel choice,
//! for one), so the worker must run with a cleared environment; [`select_kernels`] pins the one
//! knob that changes kernels when a process wants to be explicit. tract also reads, once per
//! process and best-effort, `/sys/devices/system/cpu/cpu0/{cache,topology}` (and on parts without
//! an L3, the devicetree) to size its matrix blocks; where the sandbox denies those reads it
//! falls back to defaults, which can change float rounding, never the canonical bytes beyond
//! what the rounding absorbs.
//!
//! # Hostile models and inputs
//!
//! Every tract call goes through [`guarded`], which turns a panic inside tract into
//! [`InferenceError::EnginePanic`] (`catch_unwind`; the workspace keeps `panic = "unwind"`) so a
//! malformed model is an error, not a crash. Allocation failure aborts rather than panics in Rust:
//! that, and a model that allocates without bound at run time, is what the worker's
//! address-space rlimit and process isolation are for. Shapes that tract knows at load time are
//! checked against [`MAX_TENSOR_BYTES`] first.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use alloy::primitives::B256;
use attesta_sdk::{
    canonical::{CanonicalOutput, DEFAULT_DECIMALS},
    input::{DType, Input, Values},
};
use tract_onnx::{
    pb,
    prelude::{tract_linalg::multithread::Executor, *},
    tract_hir::internal::{DimFact, Factoid, GenericFactoid, RunOptions, ShapeFactoid, SimplePlan},
};

/// The inference engine, hashed into the runtime id.
pub const ENGINE: &str = "tract-onnx";
/// The engine's version (the `tract-onnx` in Cargo.lock; a test keeps them equal).
pub const ENGINE_VERSION: &str = "0.23.9";
/// The output canonicalisation: ATO1 at [`DEFAULT_DECIMALS`] decimals. Hashed into the runtime
/// id; change it whenever the canonical bytes could change.
pub const CANONICAL_VERSION: &str = "ATO1/4";
/// Largest model file accepted: 256 MiB.
pub const MAX_MODEL_BYTES: u64 = 256 << 20;
/// Largest intermediate tensor whose size tract knows at load time: 1 GiB.
pub const MAX_TENSOR_BYTES: u64 = 1 << 30;

const _: () = assert!(DEFAULT_DECIMALS == 4, "CANONICAL_VERSION names 4 decimals");

/// Why a model or input was rejected, or inference failed.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    /// The model file could not be read.
    #[error("cannot read model {path}: {source}")]
    ModelRead {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The model file is larger than [`MAX_MODEL_BYTES`].
    #[error("model is {size} bytes, above the {max}-byte limit")]
    ModelTooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The model file does not hash to the id the job asked for.
    #[error("model file hashes to {actual}, but the job asked for model {expected}: wrong file")]
    ModelIdMismatch {
        /// The id asked for.
        expected: B256,
        /// keccak256 of the file.
        actual: B256,
    },
    /// The bytes are not a valid ONNX model.
    #[error("not a valid ONNX model: {0}")]
    ModelInvalid(String),
    /// A valid ONNX model that this node cannot run (unsupported operator, untyped input...).
    #[error("model not supported by {ENGINE} {ENGINE_VERSION}: {0}")]
    ModelUnsupported(String),
    /// The model names an external data file; only self-contained models are served.
    #[error(
        "model references external data ({0}); only self-contained .onnx files can be served: re-export it with the weights embedded"
    )]
    ExternalData(String),
    /// A tensor of the model is larger than [`MAX_TENSOR_BYTES`].
    #[error("model node {node} produces a tensor of {bytes} bytes, above the {max}-byte limit")]
    TensorTooLarge {
        /// The node.
        node: String,
        /// Its size.
        bytes: u128,
        /// The limit.
        max: u64,
    },
    /// The input bytes are not a valid ATI1 input (the sdk's message).
    #[error("{0}")]
    Input(String),
    /// The input has a different number of tensors than the model has inputs.
    #[error("the model takes {expected} input tensors, the job gave {got}")]
    InputCount {
        /// Inputs of the model.
        expected: usize,
        /// Tensors in the input.
        got: usize,
    },
    /// An input tensor has the wrong element type.
    #[error("input {index} ({name}): the model expects {expected}, the job gave {got}")]
    InputDType {
        /// Position.
        index: usize,
        /// The model's name for it.
        name: String,
        /// What the model declares.
        expected: String,
        /// What the job gave.
        got: DType,
    },
    /// An input tensor has the wrong shape.
    #[error("input {index} ({name}): the model expects shape {expected}, the job gave {got:?}")]
    InputShape {
        /// Position.
        index: usize,
        /// The model's name for it.
        name: String,
        /// What the model declares (`?` for a free dimension).
        expected: String,
        /// What the job gave.
        got: Vec<u32>,
    },
    /// tract failed while running the model.
    #[error("inference failed: {0}")]
    Run(String),
    /// An output cannot be turned into numbers.
    #[error("output {index} has type {dtype}, which has no numeric canonical form")]
    OutputType {
        /// Position.
        index: usize,
        /// Its type.
        dtype: String,
    },
    /// The output cannot be canonicalised (NaN, infinity, out of fixed-point range...); the
    /// sdk's message.
    #[error("{0}")]
    Canonical(String),
    /// tract panicked; caught so the node survives.
    #[error("the inference engine panicked while {stage}: {message}; the model is unusable here")]
    EnginePanic {
        /// What it was doing.
        stage: &'static str,
        /// The panic message.
        message: String,
    },
    /// [`select_kernels`] came too late: this process already chose its kernels.
    #[error(
        "kernels already fixed for this process ({0}); call select_kernels before loading any model"
    )]
    KernelsFixed(String),
}

/// How far tract transforms the model before running it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Optimisation {
    /// `into_optimized`: decluttered, fused, with the CPU's best kernels (the node's default).
    #[default]
    Optimised,
    /// The typed model as parsed, no decluttering or optimisation: tract's reference path.
    Plain,
}

/// How a model is loaded.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Optimisation level.
    pub optimisation: Optimisation,
    /// The executor of the plan; `SingleThread` by default. A multi-thread executor needs
    /// tract-linalg's `multithread-mm` feature (tests enable it to check determinism).
    pub executor: Executor,
}

/// The element type and shape a model declares for one input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputSpec {
    /// The model's name for it.
    pub name: String,
    /// Its element type, if it is one the ATI1 format carries.
    pub dtype: Option<DType>,
    /// tract's name for the element type.
    pub dtype_name: String,
    /// Its dimensions; `None` for a free (symbolic) one.
    pub shape: Vec<Option<u64>>,
}

impl InputSpec {
    fn shape_string(&self) -> String {
        let dims: Vec<String> =
            self.shape.iter().map(|d| d.map_or_else(|| "?".into(), |d| d.to_string())).collect();
        format!("[{}]", dims.join(", "))
    }
}

/// A loaded, planned model, ready to run any number of inputs.
#[derive(Debug)]
pub struct Model {
    id: B256,
    plan: Arc<TypedSimplePlan>,
    inputs: Vec<InputSpec>,
    load_time: Duration,
}

/// The f32 outputs of one run: `(shape, values)` per output, in the model's order.
pub type Outputs = Vec<(Vec<u32>, Vec<f32>)>;

impl Model {
    /// Reads and plans the model at `path` with the default options.
    pub fn load(path: &Path) -> Result<Self, InferenceError> {
        Self::load_with(path, &LoadOptions::default())
    }

    /// Reads the model at `path` and refuses it unless it hashes to `expected` (the job's
    /// `modelId`): a node serves only the model a job asked for.
    pub fn load_verified(path: &Path, expected: B256) -> Result<Self, InferenceError> {
        let bytes = read_model(path)?;
        let actual = attesta_sdk::model_id(&bytes);
        if actual != expected {
            return Err(InferenceError::ModelIdMismatch { expected, actual });
        }
        Self::build(&bytes, actual, &LoadOptions::default())
    }

    /// Reads and plans the model at `path`.
    pub fn load_with(path: &Path, options: &LoadOptions) -> Result<Self, InferenceError> {
        Self::from_bytes(&read_model(path)?, options)
    }

    /// Parses and plans a model from its bytes (what the fuzz target drives).
    pub fn from_bytes(bytes: &[u8], options: &LoadOptions) -> Result<Self, InferenceError> {
        let start = Instant::now();
        if bytes.len() as u64 > MAX_MODEL_BYTES {
            return Err(InferenceError::ModelTooLarge {
                size: bytes.len() as u64,
                max: MAX_MODEL_BYTES,
            });
        }
        Self::build(bytes, attesta_sdk::model_id(bytes), options).map(|mut model| {
            model.load_time = start.elapsed();
            model
        })
    }

    /// Plans a model whose id the caller already computed (hashing 3 MB costs milliseconds).
    fn build(bytes: &[u8], id: B256, options: &LoadOptions) -> Result<Self, InferenceError> {
        let start = Instant::now();
        let (plan, inputs) = guarded("loading the model", || plan_model(bytes, options))?;
        Ok(Self { id, plan, inputs, load_time: start.elapsed() })
    }

    /// `modelId`: keccak256 of the model file.
    pub fn id(&self) -> B256 {
        self.id
    }

    /// The model's declared inputs.
    pub fn inputs(&self) -> &[InputSpec] {
        &self.inputs
    }

    /// How long hashing, parsing and planning took (reading the file excluded).
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// Runs the model on `input` after checking it against the declared inputs; returns each
    /// output converted to f32.
    pub fn run(&self, input: &Input) -> Result<Outputs, InferenceError> {
        let tensors = self.check_input(input)?;
        let outputs = guarded("running the model", || {
            self.plan.run(tensors).map_err(|e| InferenceError::Run(format!("{e:#}")))
        })?;
        guarded("reading the outputs", || {
            outputs.iter().enumerate().map(|(i, t)| to_f32(i, t)).collect()
        })
    }

    /// Decodes the ATI1 `input`, runs it, and returns the canonical output bytes (ATO1).
    pub fn run_canonical(&self, input: &[u8]) -> Result<Vec<u8>, InferenceError> {
        let input = Input::decode(input).map_err(|e| InferenceError::Input(e.to_string()))?;
        let outputs = self.run(&input)?;
        let canonical = CanonicalOutput::from_f32(DEFAULT_DECIMALS, &outputs)
            .map_err(|e| InferenceError::Canonical(e.to_string()))?;
        Ok(canonical.encode())
    }

    fn check_input(&self, input: &Input) -> Result<TVec<TValue>, InferenceError> {
        let given = input.tensors();
        if given.len() != self.inputs.len() {
            return Err(InferenceError::InputCount {
                expected: self.inputs.len(),
                got: given.len(),
            });
        }
        let mut out = TVec::new();
        for (index, (spec, t)) in self.inputs.iter().zip(given).enumerate() {
            if spec.dtype != Some(t.dtype()) {
                return Err(InferenceError::InputDType {
                    index,
                    name: spec.name.clone(),
                    expected: spec.dtype.map_or_else(|| spec.dtype_name.clone(), |d| d.to_string()),
                    got: t.dtype(),
                });
            }
            let fits = spec.shape.len() == t.shape().len()
                && spec.shape.iter().zip(t.shape()).all(|(want, &got)| {
                    want.is_none_or(|w| w == u64::from(got)) && (want.is_some() || got > 0)
                });
            if !fits {
                return Err(InferenceError::InputShape {
                    index,
                    name: spec.name.clone(),
                    expected: spec.shape_string(),
                    got: t.shape().to_vec(),
                });
            }
            let shape: Vec<usize> = t.shape().iter().map(|&d| d as usize).collect();
            let tensor = match t.values() {
                Values::F32(v) => Tensor::from_shape(&shape, v),
                Values::I32(v) => Tensor::from_shape(&shape, v),
                Values::I64(v) => Tensor::from_shape(&shape, v),
                Values::U8(v) => Tensor::from_shape(&shape, v),
            }
            .map_err(|e| InferenceError::Run(format!("building input {index}: {e:#}")))?;
            out.push(tensor.into_tvalue());
        }
        Ok(out)
    }
}

/// Loads the model at `model`, runs it on the encoded `input`, and returns the canonical output
/// bytes (ATO1, see `attesta_sdk::canonical`). Called inside the sandboxed worker.
pub fn run_canonical(model: &Path, input: &[u8]) -> Result<Vec<u8>, InferenceError> {
    // Decode the input first: a malformed input is rejected without parsing the model.
    Input::decode(input).map_err(|e| InferenceError::Input(e.to_string()))?;
    Model::load(model)?.run_canonical(input)
}

/// [`run_canonical`] for a job that names its model: refuses the file unless it hashes to
/// `model_id` ([`InferenceError::ModelIdMismatch`]).
pub fn run_canonical_verified(
    model: &Path,
    model_id: B256,
    input: &[u8],
) -> Result<Vec<u8>, InferenceError> {
    Input::decode(input).map_err(|e| InferenceError::Input(e.to_string()))?;
    Model::load_verified(model, model_id)?.run_canonical(input)
}

/// Which matrix and element-wise kernels tract may use in this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernels {
    /// The best kernels for this CPU (tract's default).
    Native,
    /// Only the portable kernels every CPU of this architecture runs (on x86_64: no AVX, FMA or
    /// AVX-512; on aarch64 NEON is the baseline and stays).
    Generic,
}

/// Pins tract's kernel choice for this process, overriding the `TRACT_CPU_ISA` environment knob.
/// tract probes the CPU once per process, so this must come before the first model is loaded;
/// afterwards it fails with [`InferenceError::KernelsFixed`] unless the choice already matches.
pub fn select_kernels(kernels: Kernels) -> Result<(), InferenceError> {
    use tract_onnx::prelude::tract_linalg::{isa, knobs::TRACT_CPU_ISA};
    let spec = match kernels {
        Kernels::Native => String::new(),
        Kernels::Generic => isa::Isa::ALL
            .iter()
            .filter(|i| i.level() > 0 && i.arch().is_native())
            .map(|i| format!("-{}", i.name()))
            .collect::<Vec<_>>()
            .join(","),
    };
    TRACT_CPU_ISA.set(Some(spec));
    let set = isa::native();
    let generic = set.iter().all(|i| i.level() == 0);
    let probe_has_extensions = || {
        #[cfg(target_arch = "x86_64")]
        return std::arch::is_x86_feature_detected!("avx");
        #[cfg(not(target_arch = "x86_64"))]
        false
    };
    match kernels {
        Kernels::Generic if !generic => Err(InferenceError::KernelsFixed(format!("{set:?}"))),
        Kernels::Native if generic && probe_has_extensions() => {
            Err(InferenceError::KernelsFixed(format!("{set:?}")))
        }
        _ => Ok(()),
    }
}

/// The instruction-set features tract uses in this process (for logs and tests).
pub fn kernel_features() -> Vec<&'static str> {
    tract_onnx::prelude::tract_linalg::isa::native().iter().map(|i| i.name()).collect()
}

/// Runs `f`, turning a panic into [`InferenceError::EnginePanic`]. The last line of defence
/// against a tract bug reachable from a hostile model: the panic hook still prints the message
/// to stderr, the worker reports a typed error.
pub fn guarded<T>(
    stage: &'static str,
    f: impl FnOnce() -> Result<T, InferenceError>,
) -> Result<T, InferenceError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".into());
        Err(InferenceError::EnginePanic { stage, message })
    })
}

fn read_model(path: &Path) -> Result<Vec<u8>, InferenceError> {
    let read_err = |source| InferenceError::ModelRead { path: path.display().to_string(), source };
    let size = std::fs::metadata(path).map_err(read_err)?.len();
    if size > MAX_MODEL_BYTES {
        return Err(InferenceError::ModelTooLarge { size, max: MAX_MODEL_BYTES });
    }
    std::fs::read(path).map_err(read_err)
}

fn plan_model(
    bytes: &[u8],
    options: &LoadOptions,
) -> Result<(Arc<TypedSimplePlan>, Vec<InputSpec>), InferenceError> {
    let onnx = tract_onnx::onnx();
    let proto = onnx
        .proto_model_for_read(&mut &*bytes)
        .map_err(|e| InferenceError::ModelInvalid(format!("{e:#}")))?;
    // Required by the ONNX spec; without it tract would guess the operator versions. Also what
    // a file cut just before its trailing opset field looks like.
    if proto.opset_import.is_empty() {
        return Err(InferenceError::ModelInvalid(
            "no opset_import: the file is truncated or was not written by an ONNX exporter".into(),
        ));
    }
    let Some(graph) = &proto.graph else {
        return Err(InferenceError::ModelInvalid(
            "no graph: the file is truncated or empty".into(),
        ));
    };
    check_no_external_data(graph)?;
    check_outputs_exist(graph)?;
    let mut model: InferenceModel = onnx
        .model_for_proto_model(&proto)
        .map_err(|e| InferenceError::ModelInvalid(format!("{e:#}")))?;
    tract_onnx::Onnx::determinize(&mut model)
        .map_err(|e| InferenceError::ModelUnsupported(format!("{e:#}")))?;
    let unsupported = |e: TractError| InferenceError::ModelUnsupported(format!("{e:#}"));
    // Some exporters (magika's jax2tf) compute shapes from a free batch dimension in ways tract
    // cannot type symbolically; such models are planned for batch size 1 instead.
    let typed = match model.clone().into_typed() {
        Ok(typed) => typed,
        Err(first) => {
            if !pin_free_dims(&mut model).map_err(unsupported)? {
                return Err(unsupported(first));
            }
            model.into_typed().map_err(unsupported)?
        }
    };
    let typed = match options.optimisation {
        Optimisation::Optimised => {
            typed.into_decluttered().map_err(unsupported)?.into_optimized().map_err(unsupported)?
        }
        Optimisation::Plain => typed,
    };
    check_tensor_sizes(&typed)?;
    let inputs = input_specs(&typed).map_err(unsupported)?;
    let run_options = RunOptions { executor: Some(options.executor.clone()), ..Default::default() };
    let plan = SimplePlan::new_with_options(typed, &run_options).map_err(unsupported)?;
    Ok((plan, inputs))
}

/// Sets every free input dimension to 1; returns whether there was any.
fn pin_free_dims(model: &mut InferenceModel) -> TractResult<bool> {
    let mut changed = false;
    for ix in 0..model.input_outlets()?.len() {
        let fact = model.input_fact(ix)?.clone();
        if fact.shape.is_open() {
            continue;
        }
        let dims: TVec<DimFact> = fact
            .shape
            .dims()
            .map(|d| match d.concretize() {
                Some(d) if d.to_i64().is_ok() => GenericFactoid::Only(d),
                _ => {
                    changed = true;
                    GenericFactoid::Only(TDim::Val(1))
                }
            })
            .collect();
        model.set_input_fact(ix, fact.with_shape(ShapeFactoid::closed(dims)))?;
    }
    Ok(changed)
}

/// tract 0.23 indexes a map with each graph output's name and panics when no node, input or
/// initializer has that name; refuse such a model with an error instead.
fn check_outputs_exist(graph: &pb::GraphProto) -> Result<(), InferenceError> {
    let known: std::collections::HashSet<&str> = graph
        .node
        .iter()
        .flat_map(|n| n.output.iter().map(String::as_str))
        .chain(graph.input.iter().map(|i| i.name.as_str()))
        .chain(graph.initializer.iter().map(|t| t.name.as_str()))
        .collect();
    match graph.output.iter().find(|o| !known.contains(o.name.as_str())) {
        Some(o) => Err(InferenceError::ModelInvalid(format!(
            "graph output {:?} is produced by no node",
            o.name
        ))),
        None => Ok(()),
    }
}

fn check_no_external_data(graph: &pb::GraphProto) -> Result<(), InferenceError> {
    let external = |t: &pb::TensorProto| {
        // data_location 1 is EXTERNAL in onnx.proto.
        if !t.external_data.is_empty() || t.data_location == Some(1) {
            Err(InferenceError::ExternalData(format!("tensor {:?}", t.name)))
        } else {
            Ok(())
        }
    };
    graph.initializer.iter().try_for_each(external)?;
    for node in &graph.node {
        for attr in &node.attribute {
            attr.t.iter().chain(&attr.tensors).try_for_each(external)?;
            attr.g.iter().chain(&attr.graphs).try_for_each(check_no_external_data)?;
        }
    }
    Ok(())
}

fn check_tensor_sizes(model: &TypedModel) -> Result<(), InferenceError> {
    for node in model.nodes() {
        for output in &node.outputs {
            let Some(shape) = output.fact.shape.as_concrete() else { continue };
            let elements = shape
                .iter()
                .try_fold(1u128, |acc, &d| acc.checked_mul(d as u128))
                .unwrap_or(u128::MAX);
            let bytes = elements.saturating_mul(output.fact.datum_type.size_of() as u128);
            if bytes > u128::from(MAX_TENSOR_BYTES) {
                return Err(InferenceError::TensorTooLarge {
                    node: node.name.clone(),
                    bytes,
                    max: MAX_TENSOR_BYTES,
                });
            }
        }
    }
    Ok(())
}

fn input_specs(model: &TypedModel) -> TractResult<Vec<InputSpec>> {
    let mut specs = Vec::new();
    for (ix, outlet) in model.input_outlets()?.iter().enumerate() {
        let fact = model.input_fact(ix)?;
        let dtype = match fact.datum_type {
            DatumType::F32 => Some(DType::F32),
            DatumType::I32 => Some(DType::I32),
            DatumType::I64 => Some(DType::I64),
            DatumType::U8 => Some(DType::U8),
            _ => None,
        };
        let shape = fact.shape.dims().iter().map(|d| d.to_i64().ok().map(|d| d as u64)).collect();
        specs.push(InputSpec {
            name: model.node(outlet.node).name.clone(),
            dtype,
            dtype_name: format!("{:?}", fact.datum_type),
            shape,
        });
    }
    Ok(specs)
}

fn to_f32(index: usize, t: &TValue) -> Result<(Vec<u32>, Vec<f32>), InferenceError> {
    let numeric = t.datum_type().is_number() || t.datum_type() == DatumType::Bool;
    if !numeric {
        return Err(InferenceError::OutputType { index, dtype: format!("{:?}", t.datum_type()) });
    }
    let shape =
        t.shape().iter().map(|&d| u32::try_from(d)).collect::<Result<Vec<_>, _>>().map_err(
            |_| InferenceError::Run(format!("output {index} has a dimension above 2^32")),
        )?;
    let cast =
        t.cast_to::<f32>().map_err(|e| InferenceError::Run(format!("output {index}: {e:#}")))?;
    let values = cast
        .try_as_plain_ram()
        .and_then(|v| v.as_slice::<f32>().map(<[f32]>::to_vec))
        .map_err(|e| InferenceError::Run(format!("output {index}: {e:#}")))?;
    Ok((shape, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guarded_turns_a_panic_into_a_typed_error() {
        let r: Result<(), _> = guarded("testing", || panic!("boom {}", 1));
        match r {
            Err(InferenceError::EnginePanic { stage, message }) => {
                assert_eq!((stage, message.as_str()), ("testing", "boom 1"));
            }
            other => panic!("expected EnginePanic, got {other:?}"),
        }
        assert!(matches!(guarded("testing", || Ok(3)), Ok(3)));
    }

    #[test]
    fn graph_outputs_must_exist() {
        let graph = pb::GraphProto {
            output: vec![pb::ValueInfoProto { name: "nowhere".into(), ..Default::default() }],
            ..Default::default()
        };
        assert!(matches!(check_outputs_exist(&graph), Err(InferenceError::ModelInvalid(_))));
    }
}
