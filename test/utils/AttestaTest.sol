// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {JobEscrow} from "../../contracts/JobEscrow.sol";
import {Slashing} from "../../contracts/Slashing.sol";
import {StakingRegistry} from "../../contracts/StakingRegistry.sol";
import {IJobEscrow} from "../../contracts/interfaces/IJobEscrow.sol";
import {TestToken} from "../../contracts/mocks/TestToken.sol";
import {AttestaDeployer} from "../../script/Deploy.s.sol";
import {Test} from "forge-std/Test.sol";

/// @title AttestaTest
/// @notice Base for every Attesta test: deploys the suite through the same `_deploy` the deploy script uses,
/// creates operators with signing keys, and signs attestations the way nodes do.
abstract contract AttestaTest is Test, AttestaDeployer {
    /// @notice One operator: its account, its signing key and the key's address.
    struct Op {
        address operator;
        uint256 signerKey;
        address signer;
    }

    bytes32 internal constant RUNTIME = keccak256("attesta/test-runtime/v1");
    bytes32 internal constant MODEL = keccak256("model bytes");
    bytes32 internal constant INPUT = keccak256("input bytes");
    bytes internal constant OUTPUT = hex"0102030405";
    uint256 internal constant FEE = 1 ether;

    /// @dev secp256k1 group order; s above n/2 is the malleated twin of a valid signature.
    uint256 internal constant SECP256K1_N =
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    address internal admin = makeAddr("admin");
    address internal guardian = makeAddr("guardian");
    address internal arbiter = makeAddr("arbiter");
    address internal treasury = makeAddr("treasury");
    address internal client = makeAddr("client");
    address internal challenger = makeAddr("challenger");

    DeployConfig internal cfg;
    TestToken internal token;
    StakingRegistry internal registry;
    JobEscrow internal escrow;
    Slashing internal slashing;

    Op[] internal ops;
    uint256 private _opNonce;

    function setUp() public virtual {
        cfg = _localConfig(admin);
        cfg.guardian = guardian;
        cfg.arbiter = arbiter;
        cfg.treasury = treasury;
        cfg.runtimeIds = new bytes32[](1);
        cfg.runtimeIds[0] = RUNTIME;
        _deployWith(cfg);
    }

    function _deployWith(DeployConfig memory c) internal {
        vm.startPrank(admin);
        Deployment memory d = _deploy(c);
        vm.stopPrank();
        token = TestToken(address(d.token));
        registry = d.registry;
        escrow = d.escrow;
        slashing = d.slashing;
        delete ops;
        vm.label(address(registry), "StakingRegistry");
        vm.label(address(escrow), "JobEscrow");
        vm.label(address(slashing), "Slashing");
        vm.label(address(token), "TestToken");
    }

    /*//////////////////////////////////////////////////////////////
                               OPERATORS
    //////////////////////////////////////////////////////////////*/

    /// @notice A fresh operator account and signing key (not yet staked).
    function _newOp() internal returns (Op memory op) {
        uint256 n = ++_opNonce;
        op.operator = makeAddr(string.concat("operator-", vm.toString(n)));
        op.signerKey = uint256(keccak256(abi.encode("attesta-signer", n))) % (SECP256K1_N - 1) + 1;
        op.signer = vm.addr(op.signerKey);
    }

    /// @notice The proof of possession a signing key gives its operator.
    function _signerProof(address operator_, uint256 signerKey) internal view returns (bytes memory) {
        return _sign(signerKey, registry.signerProofDigest(operator_, vm.addr(signerKey)));
    }

    /// @notice Stakes `amount` and registers the key, which activates the operator if there is room.
    function _stakeAndRegister(Op memory op, uint256 amount) internal {
        token.mint(op.operator, amount);
        vm.startPrank(op.operator);
        token.approve(address(registry), amount);
        registry.stake(amount);
        registry.registerSigner(op.signer, _signerProof(op.operator, op.signerKey));
        vm.stopPrank();
    }

    /// @notice Adds `n` active operators with the minimum stake.
    function _addOperators(uint256 n) internal {
        for (uint256 i; i < n; ++i) {
            Op memory op = _newOp();
            _stakeAndRegister(op, registry.minStake());
            ops.push(op);
        }
    }

    /*//////////////////////////////////////////////////////////////
                                  JOBS
    //////////////////////////////////////////////////////////////*/

    function _createJob() internal returns (uint256) {
        return _createJobFor(client, FEE, block.timestamp + 1 hours);
    }

    function _createJobFor(address who, uint256 fee, uint256 deadline) internal returns (uint256 jobId) {
        token.mint(who, fee);
        vm.startPrank(who);
        token.approve(address(escrow), fee);
        jobId = escrow.createJob(MODEL, INPUT, fee, deadline);
        vm.stopPrank();
    }

    function _attestation(uint256 jobId, bytes32 resultHash, bytes32 runtimeId)
        internal
        pure
        returns (IJobEscrow.Attestation memory)
    {
        return IJobEscrow.Attestation({
            jobId: jobId, modelId: MODEL, inputHash: INPUT, resultHash: resultHash, runtimeId: runtimeId
        });
    }

    /// @notice The digest signers sign for `jobId` with `resultHash` under the test runtime.
    function _digest(uint256 jobId, bytes32 resultHash) internal view returns (bytes32) {
        return escrow.hashAttestation(_attestation(jobId, resultHash, RUNTIME));
    }

    /*//////////////////////////////////////////////////////////////
                               SIGNATURES
    //////////////////////////////////////////////////////////////*/

    function _sign(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    /// @notice Sorts keys ascending by their address, as settlement requires.
    function _sortByAddress(uint256[] memory keys) internal pure returns (uint256[] memory) {
        for (uint256 i = 1; i < keys.length; ++i) {
            uint256 k = keys[i];
            uint256 j = i;
            while (j > 0 && vm.addr(keys[j - 1]) > vm.addr(k)) {
                keys[j] = keys[j - 1];
                --j;
            }
            keys[j] = k;
        }
        return keys;
    }

    /// @notice Packs signatures by `keys` over `digest` in the given order, with their signers.
    function _packSignatures(uint256[] memory keys, bytes32 digest)
        internal
        pure
        returns (bytes memory sigs, address[] memory signers)
    {
        signers = new address[](keys.length);
        for (uint256 i; i < keys.length; ++i) {
            sigs = bytes.concat(sigs, _sign(keys[i], digest));
            signers[i] = vm.addr(keys[i]);
        }
    }

    /// @notice The signing keys of the first `m` operators, sorted by address.
    function _firstKeys(uint256 m) internal view returns (uint256[] memory keys) {
        keys = new uint256[](m);
        for (uint256 i; i < m; ++i) {
            keys[i] = ops[i].signerKey;
        }
        keys = _sortByAddress(keys);
    }

    /// @notice Settles `jobId` with OUTPUT signed by the first `m` operators; returns the signer list.
    function _settleWith(uint256 jobId, uint256 m) internal returns (address[] memory signers) {
        bytes memory sigs;
        (sigs, signers) = _packSignatures(_firstKeys(m), _digest(jobId, keccak256(OUTPUT)));
        escrow.settle(jobId, RUNTIME, keccak256(OUTPUT), OUTPUT, sigs);
    }

    /// @notice Flips s to n - s and v between 27 and 28: the same signer, different bytes.
    function _malleate(bytes memory sig) internal pure returns (bytes memory) {
        (bytes32 r, bytes32 s, uint8 v) = _split(sig);
        return abi.encodePacked(r, bytes32(SECP256K1_N - uint256(s)), v == 27 ? uint8(28) : uint8(27));
    }

    function _split(bytes memory sig) internal pure returns (bytes32 r, bytes32 s, uint8 v) {
        assembly {
            r := mload(add(sig, 32))
            s := mload(add(sig, 64))
            v := byte(0, mload(add(sig, 96)))
        }
    }
}
