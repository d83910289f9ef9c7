//! The five ESAPI calls the `tpm` check makes, with the TSS libraries (libtss2-esys,
//! libtss2-tctildr, and the libcrypto they pull in) opened at run time on the first TPM
//! call instead of linked: a command whose policy has no `tpm` check never loads them.
//!
//! The types and constants are tss-esapi's, from the same TSS headers; only the calls
//! go through the opened libraries. Everything here runs on the TPM thread only.

use std::ffi::{CString, c_char, c_void};
use std::ptr;
use std::sync::OnceLock;

use libloading::Library;
use tss_esapi::constants::response_code::Tss2ResponseCode;
use tss_esapi::constants::tss::TPM2_CAP_TPM_PROPERTIES;
use tss_esapi::tcti_ldr::TctiNameConf;
use tss_esapi::tss2_esys::{
    ESYS_CONTEXT, ESYS_TR, ESYS_TR_NONE, TPM2_CAP, TPM2_NO, TPM2_RC, TPM2_YES, TPM2B_MAX_BUFFER, TPMI_ALG_HASH,
    TPMI_YES_NO, TPML_DIGEST, TPML_PCR_SELECTION, TPMS_CAPABILITY_DATA, TPMS_PCR_SELECTION, TSS2_ABI_VERSION, TSS2_RC,
    TSS2_TCTI_CONTEXT,
};

/// The libraries, by the sonames a linked binary would name.
pub(super) const TCTILDR: &str = "libtss2-tctildr.so.0";
pub(super) const ESYS: &str = "libtss2-esys.so.0";

/// Octets of a PCR selection: 24 PCRs, as PC Client TPMs have.
const SELECT_OCTETS: u8 = 3;

type TctiInit = unsafe extern "C" fn(*const c_char, *mut *mut TSS2_TCTI_CONTEXT) -> TSS2_RC;
type TctiFinalize = unsafe extern "C" fn(*mut *mut TSS2_TCTI_CONTEXT);
type Initialize =
    unsafe extern "C" fn(*mut *mut ESYS_CONTEXT, *mut TSS2_TCTI_CONTEXT, *mut TSS2_ABI_VERSION) -> TSS2_RC;
type Finalize = unsafe extern "C" fn(*mut *mut ESYS_CONTEXT);
type Free = unsafe extern "C" fn(*mut c_void);
type GetCapability = unsafe extern "C" fn(
    *mut ESYS_CONTEXT,
    ESYS_TR,
    ESYS_TR,
    ESYS_TR,
    TPM2_CAP,
    u32,
    u32,
    *mut TPMI_YES_NO,
    *mut *mut TPMS_CAPABILITY_DATA,
) -> TSS2_RC;
type SelfTest = unsafe extern "C" fn(*mut ESYS_CONTEXT, ESYS_TR, ESYS_TR, ESYS_TR, TPMI_YES_NO) -> TSS2_RC;
type GetTestResult = unsafe extern "C" fn(
    *mut ESYS_CONTEXT,
    ESYS_TR,
    ESYS_TR,
    ESYS_TR,
    *mut *mut TPM2B_MAX_BUFFER,
    *mut TPM2_RC,
) -> TSS2_RC;
type PcrRead = unsafe extern "C" fn(
    *mut ESYS_CONTEXT,
    ESYS_TR,
    ESYS_TR,
    ESYS_TR,
    *const TPML_PCR_SELECTION,
    *mut u32,
    *mut *mut TPML_PCR_SELECTION,
    *mut *mut TPML_DIGEST,
) -> TSS2_RC;

/// The opened libraries and the functions taken from them; kept for the life of the process.
struct Api {
    tcti_init: TctiInit,
    tcti_finalize: TctiFinalize,
    initialize: Initialize,
    finalize: Finalize,
    free: Free,
    get_capability: GetCapability,
    self_test: SelfTest,
    get_test_result: GetTestResult,
    pcr_read: PcrRead,
    _libraries: [Library; 2],
}

/// Why a call failed: the TSS said no, or something it says (or loading it) does not add up.
#[derive(Debug)]
pub(super) enum Error {
    Tss(tss_esapi::Error),
    Other(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Other(why) => f.write_str(why),
            Error::Tss(e) => e.fmt(f),
        }
    }
}

fn check(rc: TSS2_RC) -> Result<(), Error> {
    match Tss2ResponseCode::from(rc) {
        Tss2ResponseCode::Success => Ok(()),
        code => Err(Error::Tss(tss_esapi::Error::Tss2Error(code))),
    }
}

/// Opens one library by soname, as the dynamic loader would find a linked one.
fn open(name: &str) -> Result<Library, String> {
    // SAFETY: the TSS libraries run no initialisers with preconditions of their own.
    unsafe { Library::new(name) }
        .map_err(|e| format!("the TPM software stack (tpm2-tss) is not installed: cannot load {name}: {e}"))
}

/// One symbol of `lib`, typed as the TSS headers declare it.
fn symbol<T: Copy>(lib: &Library, name: &str) -> Result<T, String> {
    // SAFETY: every `T` used here is the function type tss-esapi's bindings declare for `name`.
    unsafe { lib.get::<T>(name.as_bytes()) }.map(|s| *s).map_err(|e| format!("the TPM library lacks {name}: {e}"))
}

impl Api {
    fn load() -> Result<Api, String> {
        let tctildr = open(TCTILDR)?;
        let esys = open(ESYS)?;
        Ok(Api {
            tcti_init: symbol(&tctildr, "Tss2_TctiLdr_Initialize")?,
            tcti_finalize: symbol(&tctildr, "Tss2_TctiLdr_Finalize")?,
            initialize: symbol(&esys, "Esys_Initialize")?,
            finalize: symbol(&esys, "Esys_Finalize")?,
            free: symbol(&esys, "Esys_Free")?,
            get_capability: symbol(&esys, "Esys_GetCapability")?,
            self_test: symbol(&esys, "Esys_SelfTest")?,
            get_test_result: symbol(&esys, "Esys_GetTestResult")?,
            pcr_read: symbol(&esys, "Esys_PCR_Read")?,
            _libraries: [tctildr, esys],
        })
    }

    /// The libraries, opened on first use; a failure to open them is given to every caller.
    fn get() -> Result<&'static Api, Error> {
        static API: OnceLock<Result<Api, String>> = OnceLock::new();
        API.get_or_init(Api::load).as_ref().map_err(|e| Error::Other(e.clone()))
    }
}

/// An ESAPI context over a TCTI, finalized (with the TCTI) when dropped.
pub(super) struct Context {
    api: &'static Api,
    esys: *mut ESYS_CONTEXT,
    tcti: *mut TSS2_TCTI_CONTEXT,
}

/// Frees what an ESAPI call allocated for its caller.
struct Owned<'a, T> {
    api: &'a Api,
    ptr: *mut T,
}

impl<T> Owned<'_, T> {
    fn get(&self) -> Option<&T> {
        // SAFETY: ESAPI sets the pointer to a valid object of T, or leaves it null.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> Drop for Owned<'_, T> {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: allocated by ESAPI for the caller, freed once.
            unsafe { (self.api.free)(self.ptr.cast()) }
        }
    }
}

impl Context {
    /// Opens the TCTI `conf` and an ESAPI context on it.
    pub fn new(conf: TctiNameConf) -> Result<Context, Error> {
        let api = Api::get()?;
        let name = CString::try_from(conf).map_err(Error::Tss)?;
        let mut tcti = ptr::null_mut();
        // SAFETY: a NUL-terminated string and an out pointer, as the TCTI loader takes them.
        check(unsafe { (api.tcti_init)(name.as_ptr(), &mut tcti) })?;
        let mut esys = ptr::null_mut();
        // SAFETY: a TCTI context just initialized; no ABI version asked for.
        if let Err(e) = check(unsafe { (api.initialize)(&mut esys, tcti, ptr::null_mut()) }) {
            // SAFETY: initialized above and not used again.
            unsafe { (api.tcti_finalize)(&mut tcti) };
            return Err(e);
        }
        Ok(Context { api, esys, tcti })
    }

    /// Up to `count` TPM properties from `first` on, as (tag, value).
    pub fn properties(&mut self, first: u32, count: u32) -> Result<Vec<(u32, u32)>, Error> {
        let mut more = TPM2_NO as TPMI_YES_NO;
        let mut data = Owned { api: self.api, ptr: ptr::null_mut() };
        // SAFETY: a live context, no sessions, out pointers ESAPI fills.
        check(unsafe {
            (self.api.get_capability)(
                self.esys,
                ESYS_TR_NONE,
                ESYS_TR_NONE,
                ESYS_TR_NONE,
                TPM2_CAP_TPM_PROPERTIES,
                first,
                count,
                &mut more,
                &mut data.ptr,
            )
        })?;
        let Some(data) = data.get().filter(|d| d.capability == TPM2_CAP_TPM_PROPERTIES) else {
            return Ok(Vec::new());
        };
        // SAFETY: the capability asked for and answered is TPM properties.
        let list = unsafe { &data.data.tpmProperties };
        let n = (list.count as usize).min(list.tpmProperty.len());
        Ok(list.tpmProperty[..n].iter().map(|p| (p.property, p.value)).collect())
    }

    /// Starts the TPM's self-test (of what was not tested yet, unless `full`).
    pub fn self_test(&mut self, full: bool) -> Result<(), Error> {
        let full = if full { TPM2_YES } else { TPM2_NO } as TPMI_YES_NO;
        // SAFETY: a live context, no sessions.
        check(unsafe { (self.api.self_test)(self.esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, full) })
    }

    /// The self-test's result: `Err` with the TPM's code when it failed.
    pub fn test_result(&mut self) -> Result<Result<(), tss_esapi::Error>, Error> {
        let mut out = Owned { api: self.api, ptr: ptr::null_mut() };
        let mut result: TPM2_RC = 0;
        // SAFETY: a live context, no sessions, out pointers ESAPI fills.
        check(unsafe {
            (self.api.get_test_result)(self.esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &mut out.ptr, &mut result)
        })?;
        Ok(check(result).map_err(|e| match e {
            Error::Tss(e) => e,
            Error::Other(_) => unreachable!("check only gives TSS errors"),
        }))
    }

    /// Reads `indices` (each below 24) of the bank `alg`: the indices the TPM read, in
    /// order, with their digests.
    pub fn pcr_read(&mut self, alg: TPMI_ALG_HASH, indices: &[u8]) -> Result<Vec<(u8, Vec<u8>)>, Error> {
        let mut select = [0u8; 4];
        for &i in indices {
            select[usize::from(i / 8)] |= 1 << (i % 8);
        }
        // SAFETY: an all-zero TPML_PCR_SELECTION is an empty list.
        let mut selection: TPML_PCR_SELECTION = unsafe { std::mem::zeroed() };
        selection.count = 1;
        selection.pcrSelections[0] = TPMS_PCR_SELECTION { hash: alg, sizeofSelect: SELECT_OCTETS, pcrSelect: select };
        let mut counter = 0u32;
        let mut read = Owned { api: self.api, ptr: ptr::null_mut() };
        let mut digests = Owned { api: self.api, ptr: ptr::null_mut() };
        // SAFETY: a live context, no sessions, a valid selection, out pointers ESAPI fills.
        check(unsafe {
            (self.api.pcr_read)(
                self.esys,
                ESYS_TR_NONE,
                ESYS_TR_NONE,
                ESYS_TR_NONE,
                &selection,
                &mut counter,
                &mut read.ptr,
                &mut digests.ptr,
            )
        })?;
        let (Some(read), Some(digests)) = (read.get(), digests.get()) else {
            return Ok(Vec::new());
        };
        let selections = &read.pcrSelections[..(read.count as usize).min(read.pcrSelections.len())];
        let got: Vec<u8> = selections.iter().filter(|s| s.hash == alg).flat_map(selected).collect();
        let values = &digests.digests[..(digests.count as usize).min(digests.digests.len())];
        if got.len() != values.len() {
            return Err(Error::Other(format!("PCR read returned {} digests for {} PCRs", values.len(), got.len())));
        }
        Ok(got
            .into_iter()
            .zip(values)
            .map(|(i, d)| (i, d.buffer[..usize::from(d.size).min(d.buffer.len())].to_vec()))
            .collect())
    }
}

/// The PCR indices a selection names, lowest first.
fn selected(s: &TPMS_PCR_SELECTION) -> Vec<u8> {
    let octets = usize::from(s.sizeofSelect).min(s.pcrSelect.len());
    (0..octets as u8 * 8).filter(|&i| s.pcrSelect[usize::from(i / 8)] & (1 << (i % 8)) != 0).collect()
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: both were initialized in `new` and are finalized once, the ESAPI context first.
        unsafe {
            (self.api.finalize)(&mut self.esys);
            (self.api.tcti_finalize)(&mut self.tcti);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selection_names_its_set_bits_lowest_first() {
        let s = TPMS_PCR_SELECTION { hash: 0x0b, sizeofSelect: 3, pcrSelect: [0b1000_0001, 0, 0b1000_0000, 0xff] };
        assert_eq!(selected(&s), vec![0, 7, 23]);
        let short = TPMS_PCR_SELECTION { hash: 0x0b, sizeofSelect: 1, pcrSelect: [0b10, 0xff, 0xff, 0xff] };
        assert_eq!(selected(&short), vec![1]);
    }

    #[test]
    fn tss_codes_become_errors_and_success_does_not() {
        assert!(check(0).is_ok());
        assert!(matches!(check(0x000a_000a), Err(Error::Tss(_))));
    }
}
