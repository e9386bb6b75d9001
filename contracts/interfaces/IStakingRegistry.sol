// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IStakingRegistryErrors
/// @notice Custom errors of the StakingRegistry, named `StakingRegistry<Problem>` with diagnostic parameters.
interface IStakingRegistryErrors {
    /// @notice The amount is zero, or the operator's balance is below `needed`.
    error StakingRegistryInsufficientAmount(uint256 amount, uint256 needed);
    /// @notice A stake would exceed the 96-bit accounting width.
    error StakingRegistryStakeOverflow(uint256 stake);
    /// @notice The signer key is the zero address.
    error StakingRegistryZeroSigner();
    /// @notice The signer key was already bound to an operator (keys are never reused, even after rotation).
    error StakingRegistrySignerAlreadyBound(address signer, address operator);
    /// @notice The proof of possession was not signed by `signer`.
    error StakingRegistryInvalidSignerProof(address signer);
    /// @notice The operator cannot join the active set; `reason` is one of the `REASON_*` codes.
    error StakingRegistryCannotActivate(address operator, uint8 reason);
    /// @notice The operator is not in the active set.
    error StakingRegistryNotActive(address operator);
    /// @notice Nothing is unbonding, or the unbonding period ends at `unbondingEnd`.
    error StakingRegistryNotWithdrawable(uint256 unbondingEnd);
    /// @notice A governance parameter is outside its allowed range.
    error StakingRegistryParameterOutOfBounds(bytes32 parameter, uint256 value);
    /// @notice The zero address was given where an account is required.
    error StakingRegistryZeroAddress();
}

/// @title IStakingRegistryEvents
/// @notice Events of the StakingRegistry, emitted right after the state change they describe.
interface IStakingRegistryEvents {
    /// @notice `operator` added `amount` to its stake, now `newStake`.
    event Staked(address indexed operator, uint256 amount, uint256 newStake);
    /// @notice `operator` bound `signer` as its signing key; `previous` is the retired key (zero on first bind).
    event SignerRegistered(address indexed operator, address indexed signer, address indexed previous);
    /// @notice `operator` (signing with `signer`) joined the active set; `version` is the new set version.
    event OperatorActivated(address indexed operator, address indexed signer, uint64 version);
    /// @notice `operator` (signing with `signer`) left the active set; `version` is the new set version.
    event OperatorDeactivated(address indexed operator, address indexed signer, uint64 version);
    /// @notice `operator` moved `amount` from stake to unbonding; withdrawable from `unbondingEnd`.
    event UnstakeRequested(address indexed operator, uint256 amount, uint256 unbondingEnd);
    /// @notice `operator` withdrew `amount` of unbonded stake.
    event Withdrawn(address indexed operator, uint256 amount);
    /// @notice `operator` lost `amount` (from stake, then unbonding); `bounty` of it went to `reporter`.
    event Slashed(
        address indexed operator, uint256 amount, address indexed reporter, uint256 bounty, bool jailed
    );
    /// @notice A governance parameter changed.
    event ParameterSet(bytes32 indexed parameter, uint256 value);
    /// @notice The treasury that receives slashed stake changed.
    event TreasurySet(address indexed treasury);
    /// @notice The contract whose slashing exposure bounds the unbonding period from below changed.
    event ExposureSourceSet(address indexed source);
}

/// @title ISlashingExposure
/// @notice A contract whose settlements the registry's stake secures (the JobEscrow).
interface ISlashingExposure {
    /// @notice Seconds a signer must stay slashable after signing a result: until every dispute over it
    /// can have ended. The registry's unbonding period may never be shorter.
    function slashingExposure() external view returns (uint256);
}

/// @title IStakingRegistry
/// @notice Operators stake an ERC-20, bind one signing key each and form the bounded active set whose
/// members' signatures the JobEscrow accepts. Stake stays slashable during the unbonding period.
interface IStakingRegistry is IStakingRegistryErrors, IStakingRegistryEvents {
    /// @notice An operator's position.
    /// @param signer Current signing key (zero until registered).
    /// @param stake Active stake, counted toward the minimum.
    /// @param unbonding Stake waiting for the unbonding period to end; still slashable.
    /// @param unbondingEnd When `unbonding` becomes withdrawable.
    /// @param active Whether the signer is in the active set.
    /// @param jailed Whether the operator was jailed by a slash and may never rejoin.
    struct Operator {
        address signer;
        uint96 stake;
        uint96 unbonding;
        uint40 unbondingEnd;
        bool active;
        bool jailed;
    }

    /// @notice Pulls `amount` of the staking token from the caller and adds it to the caller's stake.
    /// @dev Joins the active set when the operator qualifies and there is room.
    /// @param amount Token amount; the caller must have approved it.
    function stake(uint256 amount) external;

    /// @notice Binds `signer` as the caller's signing key, retiring any previous key for good.
    /// @param signer The hot key that will sign attestations.
    /// @param proof The signer's 65-byte signature over `signerProofDigest(operator, signer)`.
    function registerSigner(address signer, bytes calldata proof) external;

    /// @notice Joins the active set explicitly, e.g. after a slot became free.
    function activate() external;

    /// @notice Leaves the active set voluntarily (stake stays in place).
    function deactivate() external;

    /// @notice Moves `amount` from stake to unbonding; it stays slashable until it is withdrawn.
    /// @param amount Token amount to unbond.
    function requestUnstake(uint256 amount) external;

    /// @notice Pays out the caller's unbonded stake once the unbonding period is over.
    /// @return amount Token amount paid.
    function withdraw() external returns (uint256 amount);

    /// @notice Takes `bps` of the operator's stake and unbonding stake; only the slashing role.
    /// @param operator The offender.
    /// @param bps Share of the operator's total stake to take, in basis points (at most 10000).
    /// @param reporter Receives `reporterBps` of the slashed amount; zero for none.
    /// @param reporterBps Reporter's share in basis points.
    /// @param jail Whether the operator may never rejoin the active set.
    /// @return amount Tokens taken.
    function slash(address operator, uint256 bps, address reporter, uint256 reporterBps, bool jail)
        external
        returns (uint256 amount);

    /// @notice Checks a list of signers against the active set in one call.
    /// @param signers Recovered signer addresses.
    /// @return threshold The current threshold M.
    /// @return firstInactive Index of the first signer not in the active set, or `signers.length` if all are.
    function checkSigners(address[] calldata signers)
        external
        view
        returns (uint256 threshold, uint256 firstInactive);

    /// @notice Maps signer keys to the operators they belong to (zero for unknown keys).
    /// @param signers Signer addresses.
    /// @return operators The operator of each signer.
    function operatorsOf(address[] calldata signers) external view returns (address[] memory operators);

    /// @notice The operator that `signer` is or was bound to, or zero.
    function operatorOf(address signer) external view returns (address);

    /// @notice Whether `signer` is currently in the active set.
    function isActiveSigner(address signer) external view returns (bool);

    /// @notice The threshold M = max(minThreshold, ceil(N * thresholdBps / 10000)).
    function threshold() external view returns (uint256);

    /// @notice The number N of active signers.
    function activeCount() external view returns (uint256);

    /// @notice The active signer keys, in no particular order.
    function activeSigners() external view returns (address[] memory);

    /// @notice Increases every time the active set changes.
    function activeSetVersion() external view returns (uint64);

    /// @notice An operator's position.
    function operator(address operator) external view returns (Operator memory);

    /// @notice The EIP-712 digest a signer key signs to prove it belongs to `operator`.
    function signerProofDigest(address operator, address signer) external view returns (bytes32);

    /// @notice Time between an unstake request and its withdrawal, during which the stake stays slashable.
    function unbondingPeriod() external view returns (uint256);

    /// @notice The staking token.
    function token() external view returns (address);

    /// @notice The contract whose `slashingExposure()` the unbonding period may not drop below (zero: none).
    function exposureSource() external view returns (ISlashingExposure);
}
