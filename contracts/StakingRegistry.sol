// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ISlashingExposure, IStakingRegistry} from "./interfaces/IStakingRegistry.sol";
import {
    AccessControlDefaultAdminRules
} from "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";

/// @title StakingRegistry
/// @notice Operators stake an ERC-20 and bind one signing key each; the keys of qualifying operators form
/// the bounded active set whose signatures the JobEscrow counts toward the threshold M.
/// @dev Invariants: the token balance covers `totalStaked + totalUnbonding` (slashed tokens leave at once);
/// `totalStaked` and `totalUnbonding` equal the sums over operators; the active set never exceeds
/// `maxActive` <= MAX_ACTIVE_BOUND; `activeSetVersion` only increases. The token must be a plain ERC-20
/// (no fee on transfer, no rebasing).
contract StakingRegistry is
    IStakingRegistry,
    AccessControlDefaultAdminRules,
    Pausable,
    ReentrancyGuardTransient,
    EIP712
{
    using SafeERC20 for IERC20;
    using EnumerableSet for EnumerableSet.AddressSet;

    /*//////////////////////////////////////////////////////////////
                               CONSTANTS
    //////////////////////////////////////////////////////////////*/

    /// @notice May pause the registry in an incident; only the admin unpauses.
    bytes32 public constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");
    /// @notice May slash; granted to the Slashing contract only.
    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");

    /// @notice Hard cap on the active set: keeps settlement's per-signer loops and a 64-bit bitmap bounded.
    uint256 public constant MAX_ACTIVE_BOUND = 64;
    /// @notice Unbonding must outlast job deadlines, challenge windows and disputes; 1 hour is the floor
    /// for local networks, 365 days the ceiling so funds are never locked for ever.
    uint256 public constant MIN_UNBONDING_PERIOD = 1 hours;
    uint256 public constant MAX_UNBONDING_PERIOD = 365 days;
    uint256 internal constant BPS = 10_000;

    /// @dev `SignerKey(address operator,address signer)`: what a key signs to prove it joins `operator`.
    bytes32 internal constant SIGNER_KEY_TYPEHASH = keccak256("SignerKey(address operator,address signer)");

    /// @notice `StakingRegistryCannotActivate` reasons.
    uint8 public constant REASON_NO_SIGNER = 1;
    uint8 public constant REASON_BELOW_MIN_STAKE = 2;
    uint8 public constant REASON_JAILED = 3;
    uint8 public constant REASON_SET_FULL = 4;
    uint8 public constant REASON_ALREADY_ACTIVE = 5;

    /*//////////////////////////////////////////////////////////////
                                STORAGE
    //////////////////////////////////////////////////////////////*/

    IERC20 private immutable _token;

    // Written through storage pointers (`Operator storage op = _operators[a]`), which slither does not follow.
    // slither-disable-next-line uninitialized-state
    mapping(address operator => Operator) private _operators;
    /// @dev Permanent: a key bound once is never bound again, to anyone, so old evidence stays attributable.
    mapping(address signer => address operator) private _signerOperator;
    EnumerableSet.AddressSet private _activeSigners;

    uint256 public totalStaked;
    uint256 public totalUnbonding;
    uint256 public totalSlashed;

    uint256 public minStake;
    uint256 public unbondingPeriod;
    uint256 public maxActive;
    /// @dev One slot, rewritten whenever the set changes: settlement reads M with a single SLOAD.
    uint64 private _activeSetVersion;
    uint16 public thresholdBps;
    uint8 public minThreshold;
    uint8 private _threshold;
    address public treasury;
    /// @inheritdoc IStakingRegistry
    ISlashingExposure public exposureSource;

    /*//////////////////////////////////////////////////////////////
                              CONSTRUCTOR
    //////////////////////////////////////////////////////////////*/

    /// @param token_ The staking token.
    /// @param admin Governance: holds DEFAULT_ADMIN_ROLE, transferred in two steps after `adminDelay`.
    /// @param adminDelay Delay of an admin transfer (OpenZeppelin AccessControlDefaultAdminRules).
    /// @param treasury_ Receives slashed stake.
    /// @param minStake_ Stake needed to be active.
    /// @param unbondingPeriod_ Time between requestUnstake and withdraw.
    /// @param maxActive_ Bound on N.
    /// @param thresholdBps_ M = ceil(N * thresholdBps / 10000) ...
    /// @param minThreshold_ ... but at least this.
    constructor(
        IERC20 token_,
        address admin,
        uint48 adminDelay,
        address treasury_,
        uint256 minStake_,
        uint256 unbondingPeriod_,
        uint256 maxActive_,
        uint256 thresholdBps_,
        uint256 minThreshold_
    ) AccessControlDefaultAdminRules(adminDelay, admin) EIP712("Attesta Staking", "1") {
        if (address(token_) == address(0)) revert StakingRegistryZeroAddress();
        _token = token_;
        _setTreasury(treasury_);
        _setMinStake(minStake_);
        _setUnbondingPeriod(unbondingPeriod_);
        _setMaxActive(maxActive_);
        _setThreshold(thresholdBps_, minThreshold_);
    }

    /*//////////////////////////////////////////////////////////////
                           OPERATOR FUNCTIONS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IStakingRegistry
    function stake(uint256 amount) external nonReentrant whenNotPaused {
        if (amount == 0) revert StakingRegistryInsufficientAmount(0, 1);
        Operator storage op = _operators[msg.sender];
        uint256 newStake = op.stake + amount;
        if (newStake > type(uint96).max) revert StakingRegistryStakeOverflow(newStake);
        op.stake = SafeCast.toUint96(newStake);
        totalStaked += amount;
        emit Staked(msg.sender, amount, newStake);
        _token.safeTransferFrom(msg.sender, address(this), amount);
        _tryActivate(msg.sender, op);
    }

    /// @inheritdoc IStakingRegistry
    function registerSigner(address signer, bytes calldata proof) external whenNotPaused {
        if (signer == address(0)) revert StakingRegistryZeroSigner();
        address bound = _signerOperator[signer];
        if (bound != address(0)) revert StakingRegistrySignerAlreadyBound(signer, bound);
        // slither-disable-next-line unused-return (the third value only details `err`, which is checked)
        (address recovered, ECDSA.RecoverError err,) =
            ECDSA.tryRecover(signerProofDigest(msg.sender, signer), proof);
        if (err != ECDSA.RecoverError.NoError || recovered != signer) {
            revert StakingRegistryInvalidSignerProof(signer);
        }

        Operator storage op = _operators[msg.sender];
        address previous = op.signer;
        _signerOperator[signer] = msg.sender;
        op.signer = signer;
        if (op.active) {
            // Rotation swaps the key in the active set: attestations by the retired key stop counting.
            // `op.active` mirrors membership of `op.signer`, and `signer` was never bound before: both succeed.
            // slither-disable-next-line unused-return
            _activeSigners.remove(previous);
            // slither-disable-next-line unused-return
            _activeSigners.add(signer);
            uint64 version = _bumpVersion();
            emit SignerRegistered(msg.sender, signer, previous);
            emit OperatorDeactivated(msg.sender, previous, version);
            emit OperatorActivated(msg.sender, signer, version);
        } else {
            emit SignerRegistered(msg.sender, signer, previous);
            _tryActivate(msg.sender, op);
        }
    }

    /// @inheritdoc IStakingRegistry
    function activate() external whenNotPaused {
        Operator storage op = _operators[msg.sender];
        uint8 reason = _activationBlocker(op);
        if (reason != 0) revert StakingRegistryCannotActivate(msg.sender, reason);
        _activate(msg.sender, op);
    }

    /// @inheritdoc IStakingRegistry
    function deactivate() external {
        Operator storage op = _operators[msg.sender];
        if (!op.active) revert StakingRegistryNotActive(msg.sender);
        _deactivate(msg.sender, op);
    }

    /// @inheritdoc IStakingRegistry
    function requestUnstake(uint256 amount) external whenNotPaused {
        Operator storage op = _operators[msg.sender];
        uint256 current = op.stake;
        if (amount == 0 || amount > current) revert StakingRegistryInsufficientAmount(amount, current);
        op.stake = SafeCast.toUint96(current - amount);
        totalStaked -= amount;
        op.unbonding = SafeCast.toUint96(uint256(op.unbonding) + amount);
        totalUnbonding += amount;
        // A new request restarts the clock for everything unbonding: the stake must stay slashable for a
        // full period after the last attestation it may have backed.
        uint256 end = block.timestamp + unbondingPeriod;
        op.unbondingEnd = SafeCast.toUint40(end);
        emit UnstakeRequested(msg.sender, amount, end);
        if (op.active && op.stake < minStake) _deactivate(msg.sender, op);
    }

    /// @inheritdoc IStakingRegistry
    function withdraw() external nonReentrant whenNotPaused returns (uint256 amount) {
        Operator storage op = _operators[msg.sender];
        amount = op.unbonding;
        // 0 says nothing is unbonding (the end of an earlier, withdrawn unbonding means nothing).
        if (amount == 0) revert StakingRegistryNotWithdrawable(0);
        if (block.timestamp < op.unbondingEnd) revert StakingRegistryNotWithdrawable(op.unbondingEnd);
        op.unbonding = 0;
        totalUnbonding -= amount;
        emit Withdrawn(msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    /*//////////////////////////////////////////////////////////////
                                SLASHING
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IStakingRegistry
    function slash(address operator_, uint256 bps, address reporter, uint256 reporterBps, bool jail)
        external
        nonReentrant
        onlyRole(SLASHER_ROLE)
        returns (uint256 amount)
    {
        if (bps > BPS) revert StakingRegistryParameterOutOfBounds("slashBps", bps);
        if (reporterBps > BPS) revert StakingRegistryParameterOutOfBounds("reporterBps", reporterBps);
        Operator storage op = _operators[operator_];
        uint256 staked = op.stake;
        uint256 unbonding = op.unbonding;
        // bps <= 10000, so amount <= staked + unbonding: a slash can never take more than there is.
        amount = Math.mulDiv(staked + unbonding, bps, BPS);
        uint256 fromStake = Math.min(amount, staked);
        uint256 fromUnbonding = amount - fromStake;
        op.stake = SafeCast.toUint96(staked - fromStake);
        op.unbonding = SafeCast.toUint96(unbonding - fromUnbonding);
        totalStaked -= fromStake;
        totalUnbonding -= fromUnbonding;
        totalSlashed += amount;
        if (jail) op.jailed = true;
        if (op.active) _deactivate(operator_, op);

        uint256 bounty = reporter == address(0) ? 0 : Math.mulDiv(amount, reporterBps, BPS);
        emit Slashed(operator_, amount, reporter, bounty, jail);
        // A reporter that cannot receive (a blocklisted address) must not shield the offender: its bounty
        // goes to the treasury instead.
        if (bounty != 0 && !_token.trySafeTransfer(reporter, bounty)) bounty = 0;
        if (amount > bounty) _token.safeTransfer(treasury, amount - bounty);
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IStakingRegistry
    function checkSigners(address[] calldata signers)
        external
        view
        returns (uint256 threshold_, uint256 firstInactive)
    {
        uint256 length = signers.length;
        for (uint256 i; i < length; ++i) {
            if (!_activeSigners.contains(signers[i])) return (threshold(), i);
        }
        return (threshold(), length);
    }

    /// @inheritdoc IStakingRegistry
    function operatorsOf(address[] calldata signers) external view returns (address[] memory operators) {
        uint256 length = signers.length;
        operators = new address[](length);
        for (uint256 i; i < length; ++i) {
            operators[i] = _signerOperator[signers[i]];
        }
    }

    /// @inheritdoc IStakingRegistry
    function operatorOf(address signer) external view returns (address) {
        return _signerOperator[signer];
    }

    /// @inheritdoc IStakingRegistry
    function isActiveSigner(address signer) external view returns (bool) {
        return _activeSigners.contains(signer);
    }

    /// @inheritdoc IStakingRegistry
    function threshold() public view returns (uint256) {
        return _threshold;
    }

    /// @inheritdoc IStakingRegistry
    function activeCount() external view returns (uint256) {
        return _activeSigners.length();
    }

    /// @inheritdoc IStakingRegistry
    function activeSigners() external view returns (address[] memory) {
        return _activeSigners.values();
    }

    /// @inheritdoc IStakingRegistry
    function activeSetVersion() external view returns (uint64) {
        return _activeSetVersion;
    }

    /// @inheritdoc IStakingRegistry
    function operator(address operator_) external view returns (Operator memory) {
        return _operators[operator_];
    }

    /// @inheritdoc IStakingRegistry
    function signerProofDigest(address operator_, address signer) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(SIGNER_KEY_TYPEHASH, operator_, signer)));
    }

    /// @inheritdoc IStakingRegistry
    function token() external view returns (address) {
        return address(_token);
    }

    /*//////////////////////////////////////////////////////////////
                               GOVERNANCE
    //////////////////////////////////////////////////////////////*/

    /// @notice Stops staking, registration, activation, unstaking and withdrawals (slashing goes on).
    function pause() external onlyRole(GUARDIAN_ROLE) {
        _pause();
    }

    /// @notice Lifts a pause; governance only, so a compromised guardian cannot undo an incident response.
    function unpause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _unpause();
    }

    /// @notice Sets the stake needed to be active. Members below it stay until they next change stake.
    function setMinStake(uint256 value) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setMinStake(value);
    }

    /// @notice Sets the unbonding period for future requests. It may not drop below the exposure source's
    /// `slashingExposure()`, or a signer could withdraw before a dispute over its signature has ended.
    function setUnbondingPeriod(uint256 value) external onlyRole(DEFAULT_ADMIN_ROLE) {
        ISlashingExposure source = exposureSource;
        if (address(source) != address(0) && value < source.slashingExposure()) {
            revert StakingRegistryParameterOutOfBounds("unbondingPeriod", value);
        }
        _setUnbondingPeriod(value);
    }

    /// @notice Binds the unbonding period to `source`'s slashing exposure (the escrow the stake secures),
    /// which the current period must already cover.
    function setExposureSource(ISlashingExposure source) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (address(source) == address(0)) revert StakingRegistryZeroAddress();
        uint256 exposure = source.slashingExposure();
        if (exposure > unbondingPeriod) revert StakingRegistryParameterOutOfBounds("exposure", exposure);
        exposureSource = source;
        emit ExposureSourceSet(address(source));
    }

    /// @notice Sets the bound on N; it cannot go below the current N.
    function setMaxActive(uint256 value) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setMaxActive(value);
    }

    /// @notice Sets M = max(floor, ceil(N * bps / 10000)).
    function setThreshold(uint256 bps, uint256 floor) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setThreshold(bps, floor);
    }

    /// @notice Sets where slashed stake goes.
    function setTreasury(address value) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setTreasury(value);
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNAL
    //////////////////////////////////////////////////////////////*/

    function _activationBlocker(Operator storage op) internal view returns (uint8) {
        if (op.active) return REASON_ALREADY_ACTIVE;
        if (op.jailed) return REASON_JAILED;
        if (op.signer == address(0)) return REASON_NO_SIGNER;
        if (op.stake < minStake) return REASON_BELOW_MIN_STAKE;
        if (_activeSigners.length() >= maxActive) return REASON_SET_FULL;
        return 0;
    }

    function _tryActivate(address operator_, Operator storage op) internal {
        if (_activationBlocker(op) == 0) _activate(operator_, op);
    }

    function _activate(address operator_, Operator storage op) internal {
        op.active = true;
        // Callers checked `!op.active`, which mirrors membership: the key is not in the set yet.
        // slither-disable-next-line unused-return
        _activeSigners.add(op.signer);
        emit OperatorActivated(operator_, op.signer, _bumpVersion());
    }

    function _deactivate(address operator_, Operator storage op) internal {
        op.active = false;
        // Callers checked `op.active`, which mirrors membership: the key is in the set.
        // slither-disable-next-line unused-return
        _activeSigners.remove(op.signer);
        emit OperatorDeactivated(operator_, op.signer, _bumpVersion());
    }

    /// @dev Every change of the set or of the threshold parameters goes through here, so the cached M is
    /// always max(minThreshold, ceil(N * thresholdBps / 10000)).
    function _bumpVersion() internal returns (uint64 version) {
        version = ++_activeSetVersion;
        _updateThreshold();
    }

    function _updateThreshold() internal {
        uint256 m = Math.max(
            minThreshold, Math.mulDiv(_activeSigners.length(), thresholdBps, BPS, Math.Rounding.Ceil)
        );
        // forge-lint: disable-next-line(unsafe-typecast) m <= max(minThreshold, N) <= 64
        _threshold = uint8(m);
    }

    function _setMinStake(uint256 value) internal {
        if (value == 0 || value > type(uint96).max) {
            revert StakingRegistryParameterOutOfBounds("minStake", value);
        }
        minStake = value;
        emit ParameterSet("minStake", value);
    }

    function _setUnbondingPeriod(uint256 value) internal {
        if (value < MIN_UNBONDING_PERIOD || value > MAX_UNBONDING_PERIOD) {
            revert StakingRegistryParameterOutOfBounds("unbondingPeriod", value);
        }
        unbondingPeriod = value;
        emit ParameterSet("unbondingPeriod", value);
    }

    function _setMaxActive(uint256 value) internal {
        if (value == 0 || value > MAX_ACTIVE_BOUND || value < _activeSigners.length()) {
            revert StakingRegistryParameterOutOfBounds("maxActive", value);
        }
        maxActive = value;
        emit ParameterSet("maxActive", value);
    }

    function _setThreshold(uint256 bps, uint256 floor) internal {
        // M must exceed N/2 so two conflicting results can never both reach a quorum; hence bps > 5000.
        // A floor above N makes the quorum unreachable, which halts settlement (fails safe) until N grows.
        if (bps <= 5000 || bps > BPS) revert StakingRegistryParameterOutOfBounds("thresholdBps", bps);
        if (floor == 0 || floor > MAX_ACTIVE_BOUND) {
            revert StakingRegistryParameterOutOfBounds("minThreshold", floor);
        }
        // forge-lint: disable-next-line(unsafe-typecast) bps <= 10000 was checked above
        thresholdBps = uint16(bps);
        // forge-lint: disable-next-line(unsafe-typecast) floor <= 64 was checked above
        minThreshold = uint8(floor);
        _updateThreshold();
        emit ParameterSet("thresholdBps", bps);
        emit ParameterSet("minThreshold", floor);
    }

    function _setTreasury(address value) internal {
        if (value == address(0)) revert StakingRegistryZeroAddress();
        treasury = value;
        emit TreasurySet(value);
    }
}
